/* Synthetic function layouts for test_plan.c, assembled at test time into
 * a stripped shared object: no .symtab, and the exported labels are
 * untyped and sizeless, so function extents come from .eh_frame only, as
 * in Debian's builds. Each case sits in a 4 KiB block of its own; int3
 * fills what is neither a function nor padding. */
	.text
	.p2align 12
base:

/* 1: a function on a 256-byte boundary behind a 2-byte nop: the padding's
 * address differs from the function's in more than the low byte. */
	.org 0x1000, 0xcc
	.cfi_startproc
	xor %eax, %eax
	ret
	.cfi_endproc
	.org 0x10fe, 0xcc
	.byte 0x66, 0x90
	.globl hk_boundary
hk_boundary:
	.cfi_startproc
	push %rbp
	mov %rsi, %rbp
	pop %rbp
	ret
	.cfi_endproc

/* 2: a 4-byte nop before a function in the same 256-byte block. */
	.org 0x2000, 0xcc
	.cfi_startproc
	ret
	.cfi_endproc
	.org 0x203c, 0xcc
	.byte 0x0f, 0x1f, 0x40, 0x00
	.globl hk_lowbyte
hk_lowbyte:
	.cfi_startproc
	push %rbx
	pop %rbx
	ret
	.cfi_endproc

/* 3: no padding (the previous function ends at its entry), push first. */
	.org 0x3000, 0xcc
	.cfi_startproc
	xor %eax, %eax
	ret
	.cfi_endproc
	.globl hk_nopad
hk_nopad:
	.cfi_startproc
	push %rbx
	mov %rdi, %rbx
	pop %rbx
	ret
	.cfi_endproc

/* 4: no padding, endbr64 first (single-stepped), then a push. */
	.org 0x4000, 0xcc
	.cfi_startproc
	ret
	.cfi_endproc
	.globl hk_endbr
hk_endbr:
	.cfi_startproc
	endbr64
	push %rbp
	pop %rbp
	ret
	.cfi_endproc

/* 5: no padding, and the arguments change before anything emulated. */
	.org 0x5000, 0xcc
	.cfi_startproc
	ret
	.cfi_endproc
	.globl hk_nosite
hk_nosite:
	.cfi_startproc
	lea 8(%rsi), %rax
	mov %rdx, %rsi
	push %rbp
	pop %rbp
	ret
	.cfi_endproc

/* 6: the only padding is a 5-byte nop (Linux 6.18 rewrites a probed one
 * into a call that a forked child cannot follow); push first. */
	.org 0x6000, 0xcc
	.cfi_startproc
	ret
	.cfi_endproc
	.org 0x60fb, 0xcc
	.byte 0x0f, 0x1f, 0x44, 0x00, 0x00
	.globl hk_nop5
hk_nop5:
	.cfi_startproc
	push %rbp
	pop %rbp
	ret
	.cfi_endproc

/* 7: no padding, push first, but a loop jumps back to the entry: a probe
 * there would count one call twice. */
	.org 0x7000, 0xcc
	.cfi_startproc
	ret
	.cfi_endproc
	.globl hk_loop
hk_loop:
	.cfi_startproc
	push %rbp
	pop %rbp
	dec %rdi
	jnz hk_loop
	ret
	.cfi_endproc

/* 8: the only padding has a segment-override prefix (cs nopw), which the
 * kernel refuses to probe: the nopw after the prefix is the entry. */
	.org 0x8000, 0xcc
	.cfi_startproc
	ret
	.cfi_endproc
	.org 0x8034, 0xcc
	.byte 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00
	.globl hk_prefix
hk_prefix:
	.cfi_startproc
	push %rbp
	pop %rbp
	ret
	.cfi_endproc

/* 9: a function that starts with a 5-byte nop (an entry probe there
 * would be rewritten by the kernel). */
	.org 0x9000, 0xcc
	.globl hk_entry_nop5
hk_entry_nop5:
	.cfi_startproc
	.byte 0x0f, 0x1f, 0x44, 0x00, 0x00
	push %rbp
	pop %rbp
	ret
	.cfi_endproc
	.org 0xa000, 0xcc
