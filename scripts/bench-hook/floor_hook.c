/* The bench's floor: a pass-through allocator hook (PyMem_SetAllocator)
 * on the entries hawk-bpf's sampling trampoline stands in front of, so
 * that the bench can say what any hook there costs the target, whatever
 * it does: the malloc, calloc and realloc of the raw, mem and object
 * domains forward to the functions that were there, and the frees stay as
 * they were (the trampoline leaves pymalloc's free alone too). Built by
 * scripts/bench; loaded by the workloads' --floor-hook (ctypes.PyDLL, so
 * with the GIL held, as PyMem_SetAllocator requires). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyMemAllocatorEx orig[3];

#define DOMAIN_FUNCS(d)							\
	static void *malloc_##d(void *ctx, size_t n)			\
	{								\
		return orig[d].malloc(ctx, n);				\
	}								\
	static void *calloc_##d(void *ctx, size_t n, size_t size)	\
	{								\
		return orig[d].calloc(ctx, n, size);			\
	}								\
	static void *realloc_##d(void *ctx, void *p, size_t n)		\
	{								\
		return orig[d].realloc(ctx, p, n);			\
	}

DOMAIN_FUNCS(0)
DOMAIN_FUNCS(1)
DOMAIN_FUNCS(2)

int hawk_floor_hook_install(void);

int hawk_floor_hook_install(void)
{
	static const PyMemAllocatorDomain dom[3] = {
		PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ
	};
	void *(*m[3])(void *, size_t) = { malloc_0, malloc_1, malloc_2 };
	void *(*c[3])(void *, size_t, size_t) = { calloc_0, calloc_1, calloc_2 };
	void *(*r[3])(void *, void *, size_t) = { realloc_0, realloc_1, realloc_2 };

	for (int d = 0; d < 3; d++) {
		PyMemAllocatorEx h;

		PyMem_GetAllocator(dom[d], &orig[d]);
		h = orig[d];		/* its ctx and free */
		h.malloc = m[d];
		h.calloc = c[d];
		h.realloc = r[d];
		PyMem_SetAllocator(dom[d], &h);
	}
	return 0;
}
