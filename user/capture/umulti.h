/* uprobe_multi links (Linux 6.6+): one BPF link puts a program on many
 * offsets of one file, for one process.
 *
 * Why: a perf-event uprobe is created and removed under the kernel's
 * global event_mutex, each removal waiting out an RCU grace period there
 * (~70 ms): 18 probes took 1.3 s to come off one process, and a
 * host-wide run's processes queued behind each other (20 processes:
 * half a minute). A multi link registers and unregisters its probes
 * together, with one grace period and no global lock.
 *
 * Debian 12's libbpf (1.1) predates them, so the link is made with the
 * bpf(2) system call itself; the program must be loaded for them
 * (hk_umulti_prepare before the object's load). */
#ifndef HAWK_UMULTI_H
#define HAWK_UMULTI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct bpf_program;

/* Whether the running kernel has them (its BTF knows the link type). */
bool hk_umulti_supported(void);
/* Before load: the program will be attached by hk_umulti_attach. */
int hk_umulti_prepare(struct bpf_program *prog);
/* Attaches prog at n file offsets of path, each with its cookie, for the
 * threads of process pid (as our PID namespace names it); retprobe: at
 * the functions' returns. The link's fd (close it to detach), or -1 with
 * errno. */
int hk_umulti_attach(const struct bpf_program *prog, pid_t pid, const char *path,
		     const uint64_t *offsets, const uint64_t *cookies, unsigned n,
		     bool retprobe);

#endif
