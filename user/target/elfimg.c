#include "elfimg.h"

#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int hk_elf_open(struct hk_elf *e, const char *path)
{
	size_t nph;

	memset(e, 0, sizeof(*e));
	e->fd = -1;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -1;
	e->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (e->fd < 0)
		return -1;
	e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
	if (!e->elf || elf_kind(e->elf) != ELF_K_ELF ||
	    gelf_getclass(e->elf) != ELFCLASS64 ||
	    elf_getphdrnum(e->elf, &nph) != 0)
		goto fail;
	for (size_t i = 0; i < nph && e->nseg < HK_ELF_MAXSEG; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(e->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		e->seg[e->nseg].vaddr = ph.p_vaddr;
		e->seg[e->nseg].memsz = ph.p_memsz;
		e->seg[e->nseg].offset = ph.p_offset;
		e->seg[e->nseg].filesz = ph.p_filesz;
		e->seg[e->nseg].flags = ph.p_flags;
		e->nseg++;
	}
	e->cfi = dwarf_getcfi_elf(e->elf);
	return 0;
fail:
	hk_elf_close(e);
	return -1;
}

void hk_elf_close(struct hk_elf *e)
{
	if (e->cfi)
		dwarf_cfi_end(e->cfi);
	if (e->elf)
		elf_end(e->elf);
	if (e->fd >= 0)
		close(e->fd);
	memset(e, 0, sizeof(*e));
	e->fd = -1;
}

static int find_in(struct hk_elf *e, Elf_Scn *scn, const char *name,
		   uint64_t *addr)
{
	GElf_Shdr sh;
	Elf_Data *d;

	if (!gelf_getshdr(scn, &sh) || !(d = elf_getdata(scn, NULL)))
		return -1;
	for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
		GElf_Sym s;
		const char *n;

		if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF)
			continue;
		n = elf_strptr(e->elf, sh.sh_link, s.st_name);
		if (n && strcmp(n, name) == 0) {
			*addr = s.st_value;
			return 0;
		}
	}
	return -1;
}

int hk_elf_symbol(struct hk_elf *e, const char *name, uint64_t *addr)
{
	static const unsigned types[] = { SHT_DYNSYM, SHT_SYMTAB };

	for (size_t t = 0; t < 2; t++) {
		Elf_Scn *scn = NULL;

		while ((scn = elf_nextscn(e->elf, scn))) {
			GElf_Shdr sh;

			if (gelf_getshdr(scn, &sh) && sh.sh_type == types[t] &&
			    find_in(e, scn, name, addr) == 0)
				return 0;
		}
	}
	return -1;
}

int hk_elf_file_offset(const struct hk_elf *e, uint64_t vaddr, uint64_t *off)
{
	for (int i = 0; i < e->nseg; i++) {
		if (vaddr >= e->seg[i].vaddr &&
		    vaddr < e->seg[i].vaddr + e->seg[i].filesz) {
			*off = vaddr - e->seg[i].vaddr + e->seg[i].offset;
			return 0;
		}
	}
	return -1;
}

bool hk_elf_is_code(const struct hk_elf *e, uint64_t vaddr)
{
	for (int i = 0; i < e->nseg; i++)
		if ((e->seg[i].flags & PF_X) && vaddr >= e->seg[i].vaddr &&
		    vaddr < e->seg[i].vaddr + e->seg[i].filesz)
			return true;
	return false;
}

int hk_elf_read(const struct hk_elf *e, uint64_t vaddr, void *buf, size_t len)
{
	uint64_t off, end;

	if (hk_elf_file_offset(e, vaddr, &off) ||
	    hk_elf_file_offset(e, vaddr + len - 1, &end) || end - off != len - 1)
		return -1;
	return pread(e->fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

bool hk_elf_in_fde(const struct hk_elf *e, uint64_t vaddr)
{
	Dwarf_Frame *fr = NULL;

	if (!e->cfi || dwarf_cfi_addrframe(e->cfi, vaddr, &fr) != 0)
		return false;
	free(fr);
	return true;
}

static int func_symbol(const struct hk_elf *e, uint64_t vaddr, uint64_t *start,
		       uint64_t *size)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) ||
		    (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
		    !(d = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;

			if (!gelf_getsym(d, (int)i, &s) ||
			    GELF_ST_TYPE(s.st_info) != STT_FUNC || !s.st_size)
				continue;
			if (vaddr >= s.st_value && vaddr < s.st_value + s.st_size) {
				*start = s.st_value;
				*size = s.st_size;
				return 0;
			}
		}
	}
	return -1;
}

int hk_elf_bias(const struct hk_elf *e, uint64_t map_start, uint64_t map_offset,
		uint64_t *bias)
{
	for (int i = 0; i < e->nseg; i++) {
		uint64_t po = e->seg[i].offset & ~0xfffULL;
		uint64_t pv = e->seg[i].vaddr & ~0xfffULL;

		if (map_offset >= po && map_offset < e->seg[i].offset + e->seg[i].filesz) {
			*bias = map_start - (pv + (map_offset - po));
			return 0;
		}
	}
	return -1;
}

/* Stripped builds (Debian's) have no .symtab, but every function has its
 * FDE in .eh_frame, and the FDE's range is the function's (or, for a
 * function split hot/cold, its part's). */
int hk_elf_func_extent(const struct hk_elf *e, uint64_t vaddr, uint64_t *start,
		       uint64_t *size)
{
	Dwarf_Frame *fr = NULL;
	Dwarf_Addr lo, hi;
	int rc = -1;

	if (func_symbol(e, vaddr, start, size) == 0)
		return 0;
	if (!e->cfi || dwarf_cfi_addrframe(e->cfi, vaddr, &fr) != 0)
		return -1;
	if (dwarf_frame_info(fr, &lo, &hi, NULL) >= 0 && hi > lo) {
		*start = lo;
		*size = hi - lo;
		rc = 0;
	}
	free(fr);
	return rc;
}
