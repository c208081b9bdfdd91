#include "disasm.h"

#include <capstone/capstone.h>
#include <string.h>

static bool is_arg_reg(unsigned r)
{
	switch (r) {
	case X86_REG_RSI: case X86_REG_ESI: case X86_REG_SI: case X86_REG_SIL:
	case X86_REG_RDX: case X86_REG_EDX: case X86_REG_DX: case X86_REG_DL:
	case X86_REG_DH:
		return true;
	}
	return false;
}

static bool is_sp_reg(unsigned r)
{
	return r == X86_REG_RSP || r == X86_REG_ESP || r == X86_REG_SP ||
	       r == X86_REG_SPL;
}

/* The kernel refuses uprobes on instructions with segment-override or lock
 * prefixes (facts.md), and rejects 0x66-prefixed branches. */
static bool bad_prefix(const cs_x86 *x, bool *has66)
{
	*has66 = false;
	for (int i = 0; i < 4; i++) {
		switch (x->prefix[i]) {
		case 0x2e: case 0x36: case 0x3e: case 0x26: case 0x64:
		case 0x65: case 0xf0:
			return true;
		case 0x66:
			*has66 = true;
		}
	}
	return false;
}

static void classify(const cs_insn *in, struct hk_insn *o)
{
	const cs_detail *d = in->detail;
	const cs_x86 *x = &d->x86;
	bool has66, jump = false;

	memset(o, 0, sizeof(*o));
	o->addr = in->address;
	o->size = in->size;
	o->nop = in->id == X86_INS_NOP ||
		 (in->size == 2 && in->bytes[0] == 0x66 && in->bytes[1] == 0x90);
	o->probeable = !bad_prefix(x, &has66) && in->id != X86_INS_INT3;
	for (int i = 0; i < d->groups_count; i++) {
		switch (d->groups[i]) {
		case X86_GRP_JUMP:
			jump = true;
			/* fall through */
		case X86_GRP_CALL: case X86_GRP_RET: case X86_GRP_INT:
		case X86_GRP_IRET: case X86_GRP_BRANCH_RELATIVE:
			o->flow = true;
		}
	}
	if (in->id == X86_INS_HLT || in->id == X86_INS_UD2 ||
	    in->id == X86_INS_SYSCALL)
		o->flow = true;
	for (int i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP) {
			o->has_rip_mem = true;
			o->rip_mem = in->address + in->size + op->mem.disp;
		}
		if (o->flow && op->type == X86_OP_IMM && x->op_count == 1) {
			o->has_target = true;
			o->target = (uint64_t)op->imm;
		}
	}
	for (int i = 0; i < d->regs_write_count; i++) {
		if (is_arg_reg(d->regs_write[i]))
			o->writes_args = true;
		if (is_sp_reg(d->regs_write[i]))
			o->writes_sp = true;
	}
	for (int i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type == X86_OP_REG && (op->access & CS_AC_WRITE)) {
			if (is_arg_reg(op->reg))
				o->writes_args = true;
			if (is_sp_reg(op->reg))
				o->writes_sp = true;
		}
	}
	if (in->id == X86_INS_PUSH || in->id == X86_INS_POP ||
	    in->id == X86_INS_CALL || in->id == X86_INS_RET ||
	    in->id == X86_INS_LEAVE || in->id == X86_INS_ENTER)
		o->writes_sp = true;
	/* What arch/x86/kernel/uprobes.c emulates instead of single-stepping:
	 * nops, relative jmp/jcc/call (no 0x66), push of a register. */
	if (o->probeable) {
		if (o->nop)
			o->emulated = true;
		else if (jump && o->has_target && !has66)
			o->emulated = true;
		else if (in->id == X86_INS_PUSH && x->op_count == 1 &&
			 x->operands[0].type == X86_OP_REG && !has66)
			o->emulated = true;
	}
}

size_t hk_disasm(const uint8_t *code, size_t len, uint64_t addr,
		 struct hk_insn *out, size_t max)
{
	csh h;
	cs_insn *in = NULL;
	size_t n;

	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return 0;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(h, code, len, addr, max, &in);
	for (size_t i = 0; i < n; i++)
		classify(&in[i], &out[i]);
	if (n)
		cs_free(in, n);
	cs_close(&h);
	return n;
}
