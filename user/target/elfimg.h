/* One ELF file of the target (executable or libpython), read from disk:
 * symbols, segments, code bytes and function bounds from .eh_frame. */
#ifndef HAWK_ELFIMG_H
#define HAWK_ELFIMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_ELF_MAXSEG 16

struct hk_elf {
	int fd;
	void *elf;		/* Elf * */
	void *cfi;		/* Dwarf_CFI * from .eh_frame, may be NULL */
	int nseg;
	struct {
		uint64_t vaddr, memsz, offset, filesz;
		uint32_t flags;
	} seg[HK_ELF_MAXSEG];
};

int hk_elf_open(struct hk_elf *e, const char *path);
void hk_elf_close(struct hk_elf *e);
/* A defined symbol from .dynsym, then .symtab: 0 found, -1 not. */
int hk_elf_symbol(struct hk_elf *e, const char *name, uint64_t *addr);
/* File offset of a virtual address in a PT_LOAD segment: 0 or -1. */
int hk_elf_file_offset(const struct hk_elf *e, uint64_t vaddr, uint64_t *off);
/* Bias (runtime address - vaddr) of the image from one of its mappings
 * (start address and file offset, as /proc/PID/maps gives them): 0 or -1. */
int hk_elf_bias(const struct hk_elf *e, uint64_t map_start, uint64_t map_offset,
		uint64_t *bias);
bool hk_elf_is_code(const struct hk_elf *e, uint64_t vaddr);
/* Bytes of the file image at vaddr (never the process: probes change it). */
int hk_elf_read(const struct hk_elf *e, uint64_t vaddr, void *buf, size_t len);
/* Whether an FDE of .eh_frame covers vaddr: code of some function, as
 * opposed to alignment padding between functions. */
bool hk_elf_in_fde(const struct hk_elf *e, uint64_t vaddr);
/* The function containing vaddr: its STT_FUNC symbol (with a size), else
 * the range of the .eh_frame FDE covering it. 0 found, -1 not. */
int hk_elf_func_extent(const struct hk_elf *e, uint64_t vaddr, uint64_t *start,
		       uint64_t *size);

#endif
