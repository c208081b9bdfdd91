/* x86-64 instruction facts hawk-bpf needs, from capstone. */
#ifndef HAWK_DISASM_H
#define HAWK_DISASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hk_insn {
	uint64_t addr;
	uint8_t size;
	bool nop;		/* any nop form (executes as nothing) */
	bool emulated;		/* the kernel emulates it under a uprobe */
	bool probeable;		/* the kernel accepts a uprobe on it */
	bool flow;		/* may not fall through: jmp, jcc, call, ret… */
	bool writes_sp;
	bool writes_args;	/* writes rsi or rdx (allocator arguments) */
	bool has_target;	/* direct branch with a known target */
	uint64_t target;
	bool has_rip_mem;	/* rip-relative memory operand */
	uint64_t rip_mem;
};

/* Decode up to max instructions from code (at address addr); returns how
 * many were decoded (stops at the first undecodable byte). */
size_t hk_disasm(const uint8_t *code, size_t len, uint64_t addr,
		 struct hk_insn *out, size_t max);

#endif
