/* Drives user/inject/freeze.c for test_freeze.py: driver PID, then commands on
 * stdin, one reply line each on stdout:
 *   freeze                 -> "frozen THREADS SIGNALS GROUPSTOP" | "error MSG"
 *   thaw                   -> "thawed" | "error MSG"
 *   loop N HOLD_US GAP_US  -> N cycles of freeze, hold, thaw, gap:
 *     "looped N MAXTHREADS SIGNALS GROUPSTOPS MAX_US MEAN_US UNFROZEN"
 *     | "error CYCLE MSG"
 *   catch N                -> freeze (and thaw) up to N times until a freeze
 *     catches a signal in delivery; stays frozen: as freeze | "error ..."
 * MAX_US/MEAN_US time hk_freeze; UNFROZEN counts threads seen outside a
 * tracing stop ('t') while frozen (must be 0). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "freeze.h"

static pid_t pid;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, us % 1000000 * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Threads of pid whose state is neither 't' nor dead. */
static int unfrozen(void)
{
	char path[320], buf[512], *p;
	struct dirent *e;
	int bad = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, e->d_name);
		if (!(f = fopen(path, "re")))
			continue;
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
		    !strchr("tZX", p[2])) {
			fprintf(stderr, "driver: thread %s in state %c while frozen\n", e->d_name, p[2]);
			bad++;
		}
		fclose(f);
	}
	closedir(d);
	return bad;
}

static void loop(long n, long hold, long gap)
{
	size_t maxthreads = 0, signals = 0, gstops = 0, bad = 0;
	double max = 0, sum = 0;
	char err[256];

	for (long i = 0; i < n; i++) {
		struct hk_frozen f;
		double t0 = now_us(), dt;

		if (hk_freeze(pid, &f, err, sizeof(err))) {
			printf("error %ld %s\n", i, err);
			return;
		}
		dt = now_us() - t0;
		max = dt > max ? dt : max;
		sum += dt;
		maxthreads = f.nthreads > maxthreads ? f.nthreads : maxthreads;
		signals += f.nsignals;
		gstops += f.group_stop;
		bad += unfrozen();
		sleep_us(hold);
		if (hk_thaw(&f)) {
			printf("error %ld thaw: %s\n", i, strerror(errno));
			return;
		}
		sleep_us(gap);
	}
	printf("looped %ld %zu %zu %zu %.0f %.0f %zu\n", n, maxthreads, signals,
	       gstops, max, n ? sum / n : 0, bad);
}

int main(int argc, char **argv)
{
	struct hk_frozen f = {0};
	char line[128], err[256];
	long n, hold, gap;

	if (argc != 2 || (pid = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: %s PID\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strcmp(line, "freeze\n")) {
			if (hk_freeze(pid, &f, err, sizeof(err)))
				printf("error %s\n", err);
			else
				printf("frozen %zu %zu %d\n", f.nthreads, f.nsignals, f.group_stop);
		} else if (!strcmp(line, "thaw\n")) {
			if (hk_thaw(&f))
				printf("error %s\n", strerror(errno));
			else
				printf("thawed\n");
		} else if (sscanf(line, "catch %ld", &n) == 1) {
			int rc = 0;

			for (long i = 0; i < n; i++) {
				if ((rc = hk_freeze(pid, &f, err, sizeof(err))) || f.nsignals)
					break;
				hk_thaw(&f);	/* clears f */
			}
			if (rc)
				printf("error %s\n", err);
			else if (!f.nsignals)
				printf("error no signal caught in delivery in %ld freezes\n", n);
			else
				printf("frozen %zu %zu %d\n", f.nthreads, f.nsignals, f.group_stop);
		} else if (sscanf(line, "loop %ld %ld %ld", &n, &hold, &gap) == 3) {
			loop(n, hold, gap);
		} else {
			printf("error unknown command\n");
		}
	}
	return 0;
}
