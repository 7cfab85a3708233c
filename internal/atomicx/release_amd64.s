//go:build amd64 && !race

#include "textflag.h"

// func storeRelease32(p *uint32, v uint32)
// A plain MOV: x86-TSO never makes a store visible before an earlier load
// or store of the same thread, so this is a release store. The call itself
// stops the compiler from moving the caller's memory operations past it.
TEXT ·storeRelease32(SB), NOSPLIT, $0-12
	MOVQ p+0(FP), AX
	MOVL v+8(FP), BX
	MOVL BX, 0(AX)
	RET

// func storeRelease64(p *uint64, v uint64)
TEXT ·storeRelease64(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), AX
	MOVQ v+8(FP), BX
	MOVQ BX, 0(AX)
	RET

// func storeRelease64s(dst, src *uint64, n int)
// n > 0 plain 8-byte MOVs, in increasing address order.
TEXT ·storeRelease64s(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
loop:
	MOVQ (SI), AX
	MOVQ AX, (DI)
	ADDQ $8, SI
	ADDQ $8, DI
	DECQ CX
	JNE  loop
	RET
