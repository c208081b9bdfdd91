/* Small helpers the commands share. */
#ifndef HAWK_UTIL_H
#define HAWK_UTIL_H

#include <stddef.h>

/* "hawk-bpf: " + the message + newline on stderr; returns 1 (exit status). */
__attribute__((format(printf, 1, 2)))
int hk_fail(const char *fmt, ...);
/* Writes all of buf, retrying short writes and EINTR: 0, or -1. */
int hk_send_all(int fd, const char *buf, size_t len);

#endif
