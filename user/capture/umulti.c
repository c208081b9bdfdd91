#include "umulti.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's ABI (include/uapi/linux/bpf.h), newer than the headers
 * Debian 12 ships: the attach type, the return flag, and the
 * BPF_LINK_CREATE attributes of a uprobe_multi link. */
#define HK_BPF_TRACE_UPROBE_MULTI 48
#define HK_BPF_F_UPROBE_MULTI_RETURN 1U

struct umulti_attr {
	uint32_t prog_fd;
	uint32_t target_fd;
	uint32_t attach_type;
	uint32_t flags;
	uint64_t path;
	uint64_t offsets;
	uint64_t ref_ctr_offsets;
	uint64_t cookies;
	uint32_t cnt;
	uint32_t umflags;
	uint32_t pid;
};

_Static_assert(offsetof(struct umulti_attr, path) == 16, "link_create's union");
_Static_assert(offsetof(struct umulti_attr, pid) == 56, "uprobe_multi.pid");
_Static_assert(sizeof(struct umulti_attr) <= sizeof(union bpf_attr),
	       "within bpf_attr");

static bool supported;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void probe(void)
{
	struct btf *btf = btf__load_vmlinux_btf();

	supported = btf && btf__find_by_name_kind(btf, "bpf_uprobe_multi_link",
						  BTF_KIND_STRUCT) > 0;
	btf__free(btf);
}

bool hk_umulti_supported(void)
{
	pthread_once(&once, probe);
	return supported;
}

int hk_umulti_prepare(struct bpf_program *prog)
{
	return bpf_program__set_expected_attach_type(prog,
		(enum bpf_attach_type)HK_BPF_TRACE_UPROBE_MULTI);
}

int hk_umulti_attach(const struct bpf_program *prog, pid_t pid, const char *path,
		     const uint64_t *offsets, const uint64_t *cookies, unsigned n,
		     bool retprobe)
{
	union bpf_attr attr;
	struct umulti_attr *a = (struct umulti_attr *)&attr;

	memset(&attr, 0, sizeof(attr));
	a->prog_fd = (uint32_t)bpf_program__fd(prog);
	a->attach_type = HK_BPF_TRACE_UPROBE_MULTI;
	a->path = (uint64_t)(uintptr_t)path;
	a->offsets = (uint64_t)(uintptr_t)offsets;
	a->cookies = (uint64_t)(uintptr_t)cookies;
	a->cnt = n;
	a->umflags = retprobe ? HK_BPF_F_UPROBE_MULTI_RETURN : 0;
	a->pid = (uint32_t)pid;
	return (int)syscall(SYS_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
}
