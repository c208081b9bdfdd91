/* A target whose main thread has exited (pthread_exit) while another runs:
 * its leader is a zombie, which cannot be seized but still counts as one of
 * its threads. Prints "ready" once the leader is a zombie; at stdin EOF
 * prints "done" and exits 0. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pid_t leader;

static char leader_state(void)
{
	char path[64], buf[512], *p = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)leader);
	if ((f = fopen(path, "re"))) {
		if (fgets(buf, sizeof(buf), f))
			p = strrchr(buf, ')');
		fclose(f);
	}
	return p && p[1] == ' ' ? p[2] : '?';
}

static void *worker(void *arg)
{
	char buf[256];

	(void)arg;
	while (leader_state() != 'Z')
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	printf("ready\n");
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	printf("done\n");
	fflush(stdout);
	_exit(0);
}

int main(void)
{
	pthread_t th;

	leader = getpid();
	if (pthread_create(&th, NULL, worker, NULL))
		return 1;
	pthread_exit(NULL);
}
