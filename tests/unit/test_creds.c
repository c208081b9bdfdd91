/* hk_creds_of against the kernel's own answers for this process and a
 * child with other ids, and hk_creds_enter/leave: a file only root may read
 * is closed while a child's credentials are on, open again after. (Unit
 * tests run as root.) */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "creds.h"

Test(creds, of_self_is_what_the_kernel_says)
{
	struct hk_creds c;
	gid_t groups[256];
	int n = getgroups(256, groups);

	cr_assert_eq(hk_creds_of(getpid(), &c), 0);
	cr_assert(c.known);
	cr_assert_eq(c.fsuid, geteuid());
	cr_assert_eq(c.fsgid, getegid());
	cr_assert_eq(c.ngroups, (size_t)n);
	for (int i = 0; i < n; i++)
		cr_assert_eq(c.groups[i], groups[i]);
	hk_creds_free(&c);
}

/* A child that took uid/gid 65534 and groups {4242, 4343}, then waits. */
static pid_t nobody_child(void)
{
	int p[2];
	char b;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	if (!(pid = fork())) {
		gid_t g[] = { 4242, 4343 };

		if (setgroups(2, g) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	cr_assert_eq(read(p[0], &b, 1), 1);
	close(p[0]);
	return pid;
}

Test(creds, of_another_process_and_taking_them_on)
{
	char path[] = "/tmp/hk-creds-XXXXXX";
	struct hk_creds c, none = {0};
	struct hk_creds_saved s;
	pid_t pid = nobody_child();
	int fd = mkstemp(path), st;

	cr_assert_eq(hk_creds_of(pid, &c), 0);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	cr_assert_eq(c.fsuid, 65534);
	cr_assert_eq(c.fsgid, 65534);
	cr_assert_eq(c.ngroups, 2);
	cr_assert(c.groups[0] == 4242 && c.groups[1] == 4343);

	cr_assert(fd >= 0 && fchmod(fd, 0) == 0);
	close(fd);
	cr_assert_eq(hk_creds_enter(&c, &s), 0);
	fd = open(path, O_RDONLY);
	hk_creds_leave(&s);
	cr_assert(fd < 0, "nobody opened a file of mode 0");
	fd = open(path, O_RDONLY);
	cr_assert(fd >= 0, "back to root, CAP_DAC_OVERRIDE did not come back");
	close(fd);
	/* Back to what we had: fsuid 0 with its capabilities, our groups. */
	cr_assert_eq(setfsuid(-1), 0);
	cr_assert_eq(hk_creds_enter(&none, &s), -1, "unknown credentials must not be taken on");
	unlink(path);
	hk_creds_free(&c);
}
