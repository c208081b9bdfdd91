/* A target with a thread that cannot be ptrace-stopped for a while: the main
 * thread waits in vfork() (a killable, not interruptible, sleep) for a child
 * that sleeps SECS seconds. Another thread counts into the first 8 bytes of
 * the file COUNTERS. Prints "ready" (from the child) once both are under
 * way; exits 0 once the child is done. Usage: vforker COUNTERS SECS. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;
static volatile uint64_t *counter;

static void *count(void *arg)
{
	while (!atomic_load(&stop))
		(*counter)++;
	return NULL;
}

int main(int argc, char **argv)
{
	struct timespec ts = { argc == 3 ? atoi(argv[2]) : 4, 0 };
	pthread_t th;
	int fd;
	pid_t child;

	if (argc != 3 || (fd = open(argv[1], O_RDWR)) < 0 ||
	    (counter = mmap(NULL, 64, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
		return 2;
	pthread_create(&th, NULL, count, NULL);
	child = vfork();
	if (child == 0) {
		/* Only async-signal-safe calls in a vfork child. */
		write(1, "ready\n", 6);
		nanosleep(&ts, NULL);
		_exit(0);
	}
	if (child < 0)
		return 3;
	waitpid(child, NULL, 0);
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	return 0;
}
