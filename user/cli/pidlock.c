#include "pidlock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define PID_FS_MAGIC 0x50494446

int hk_pidlock_take(pid_t pid)
{
	const struct timespec pause = { .tv_nsec = 2000000 };
	struct statfs fs;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0)
		return -1;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) || fstatfs(fd, &fs) || fs.f_type != PID_FS_MAGIC) {
		close(fd);
		return -1;
	}
	/* retried for 50 ms, as the /run lock: a holder may be letting go */
	for (int i = 0; i < 25; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK)
			break;
		nanosleep(&pause, NULL);
	}
	close(fd);
	return errno == EWOULDBLOCK ? -2 : -1;
}
