/* A target that keeps creating threads, some of them from threads that were
 * just created, so a freeze must rescan for threads born before their
 * creator stopped. Prints "ready"; at stdin EOF prints how many threads it
 * created and exits 0. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static atomic_long created;
static atomic_int alive, stop;

static void spin(long ns)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < ns);
}

static void *worker(void *arg);

static void spawn(intptr_t depth)
{
	pthread_attr_t a;
	pthread_t th;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 * 1024);
	atomic_fetch_add(&alive, 1);
	if (pthread_create(&th, &a, worker, (void *)depth) == 0)
		atomic_fetch_add(&created, 1);
	else
		atomic_fetch_sub(&alive, 1);
	pthread_attr_destroy(&a);
}

/* Each worker spawns a child at once (up to depth 3), spins, and exits. */
static void *worker(void *arg)
{
	intptr_t depth = (intptr_t)arg;

	if (depth < 3)
		spawn(depth + 1);
	spin(50000);
	atomic_fetch_sub(&alive, 1);
	return NULL;
}

static void *spawner(void *arg)
{
	while (!atomic_load(&stop)) {
		if (atomic_load(&alive) < 32)
			spawn(0);
		else
			spin(10000);
	}
	return NULL;
}

int main(void)
{
	pthread_t th[2];
	char buf[256];

	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, spawner, NULL);
	printf("ready\n");
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	while (atomic_load(&alive))
		spin(1000000);
	printf("%ld\n", atomic_load(&created));
	return 0;
}
