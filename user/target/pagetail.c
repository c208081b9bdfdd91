#include "pagetail.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "elfimg.h"
#include "proc.h"

#define PAGE 4096ULL

static void map_file(pid_t pid, const struct hk_map *m, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/%d/map_files/%llx-%llx", (int)pid,
		 (unsigned long long)m->start, (unsigned long long)m->end);
}

/* Whether maps entry i is the first one of its file. */
static bool first_of_file(const struct hk_maps *maps, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (maps->v[j].path && maps->v[j].inode == maps->v[i].inode &&
		    strcmp(maps->v[j].path, maps->v[i].path) == 0)
			return false;
	return true;
}

static int tail_of(struct hk_elf *e, uint64_t bias, struct hk_tail *t)
{
	struct stat st;
	int x = -1, w = -1;

	for (int i = 0; i < e->nseg; i++) {
		if (e->seg[i].flags & PF_X)
			x = i;
		else if (e->seg[i].flags & PF_W)
			w = i;
	}
	if (x < 0 || w < 0 || fstat(e->fd, &st))
		return -1;
	/* Code: the page holding the segment's end is file-backed; bytes
	 * past the end of the file are not used. */
	uint64_t end = e->seg[x].vaddr + e->seg[x].filesz;
	uint64_t room = (PAGE - end % PAGE) % PAGE;
	uint64_t file_end = e->seg[x].offset + e->seg[x].filesz;
	if (file_end + room > (uint64_t)st.st_size)
		room = file_end < (uint64_t)st.st_size ? (uint64_t)st.st_size - file_end : 0;
	t->code = end + bias;
	t->code_room = room;
	/* Data: after .bss, to the end of its page (anonymous, or the last
	 * file page when there is no .bss: then within the file). */
	uint64_t dend = e->seg[w].vaddr + e->seg[w].memsz;
	uint64_t s = (dend + 7) & ~7ULL, pend = (dend + PAGE - 1) & ~(PAGE - 1);
	uint64_t fpage = (e->seg[w].vaddr + e->seg[w].filesz) & ~(PAGE - 1);
	if (s >= pend || (fpage >= (dend & ~(PAGE - 1)) &&
			  e->seg[w].offset + (s - e->seg[w].vaddr) >= (uint64_t)st.st_size)) {
		t->rw = 0;
		t->rw_room = 0;
	} else {
		t->rw = s + bias;
		t->rw_room = pend - s;
	}
	return 0;
}

/* Whether [addr, addr + len) lies in one mapping with permission `perm`
 * ('w' or 'x') as the target has it now: a tail in a page that RELRO made
 * read-only, say, would fault on the trampoline's first store. */
static bool mapped_as(const struct hk_maps *maps, uint64_t addr, uint64_t len,
		      char perm)
{
	for (size_t i = 0; i < maps->n; i++) {
		const struct hk_map *m = &maps->v[i];

		if (addr >= m->start && addr + len <= m->end)
			return perm == 'w' ? m->perms[1] == 'w' : m->perms[2] == 'x';
	}
	return false;
}

int hk_tails(pid_t pid, struct hk_tail **v, size_t *n)
{
	struct hk_maps maps;
	char path[96];
	int rc = 0;

	*v = NULL;
	*n = 0;
	if (hk_maps_read(pid, &maps))
		return -1;
	for (size_t i = 0; i < maps.n && rc == 0; i++) {
		const struct hk_map *m = &maps.v[i];
		struct hk_tail t, *nv;
		struct hk_elf e;
		uint64_t bias, a;

		if (!m->path || m->path[0] != '/' || !first_of_file(&maps, i))
			continue;
		map_file(pid, m, path, sizeof(path));
		if (hk_elf_open(&e, path))
			continue;
		memset(&t, 0, sizeof(t));
		snprintf(t.name, sizeof(t.name), "%s", m->path);
		t.defines_malloc = hk_elf_symbol(&e, "malloc", &a) == 0;
		if (hk_elf_bias(&e, m->start, m->offset, &bias) == 0 &&
		    tail_of(&e, bias, &t) == 0) {
			if (t.code_room && !mapped_as(&maps, t.code, t.code_room, 'x'))
				t.code_room = 0;
			if (t.rw_room && !mapped_as(&maps, t.rw, t.rw_room, 'w'))
				t.rw_room = 0;
		}
		hk_elf_close(&e);
		nv = realloc(*v, (*n + 1) * sizeof(**v));
		if (!nv) {
			rc = -1;
			break;
		}
		*v = nv;
		(*v)[(*n)++] = t;
	}
	hk_maps_free(&maps);
	if (rc) {
		free(*v);
		*v = NULL;
		*n = 0;
	}
	return rc;
}

bool hk_glibc_malloc(const struct hk_tail *v, size_t n)
{
	int libc = 0, other = 0;

	for (size_t i = 0; i < n; i++) {
		const char *base = strrchr(v[i].name, '/');

		if (!v[i].defines_malloc)
			continue;
		if (strcmp(base ? base + 1 : v[i].name, "libc.so.6") == 0)
			libc++;
		else
			other++;
	}
	return libc == 1 && other == 0;
}
