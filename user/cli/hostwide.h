/* The one-shot profile of several processes: every CPython process on
 * the host, or those -p PID,..., --match, --container and --cgroup
 * select (procset.h), reported together (hostreport.h). */
#ifndef HAWK_HOSTWIDE_H
#define HAWK_HOSTWIDE_H

#include <signal.h>
#include "options.h"

/* The exit status; errors as one line on stderr. */
int hk_hostwide_main(const struct hk_options *o, volatile sig_atomic_t *stop);

#endif
