/* A target whose thread sends itself SIGRTMIN nonstop: it is nearly always
 * inside signal delivery, so a freeze often catches it with a signal
 * dequeued (signal-delivery-stop), which the freezer must re-inject.
 * Prints "ready"; at stdin EOF prints "SENT GOT" (equal unless a signal
 * was lost) and exits 0. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_long got;
static atomic_int stop;
static long sent;

static void on_signal(int sig)
{
	atomic_fetch_add(&got, 1);
}

static void *spam(void *arg)
{
	pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);

	while (!atomic_load(&stop))
		if (syscall(SYS_tgkill, pid, tid, SIGRTMIN) == 0)
			sent++;
	return NULL;
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	char buf[256];
	pthread_t th;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGRTMIN, &sa, NULL);
	pthread_create(&th, NULL, spam, NULL);
	printf("ready\n");
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	printf("%ld %ld\n", sent, atomic_load(&got));
	return 0;
}
