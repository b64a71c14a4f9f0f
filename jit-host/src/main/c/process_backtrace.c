/*
 * The process unwinder's view of a stopped thread's JIT frames, for ProcessUnwinder (Java): libgcc's
 * _Unwind_Backtrace, started not at the caller but at a frame of another (stopped) stack.
 *
 * libgcc starts a backtrace at the function that calls it. So a small thunk,
 * safepointkit_unwind_from, calls _Unwind_Backtrace with CFI of its own that describes a caller
 * it does not have: its CFA is read from its stack ([RSP], where it stored the CFA it was given),
 * so the return address is taken from CFA - 8, the stopped frame's return-address slot; and
 * RBX, RBP, R12-R15 (which it loaded with the stopped frame's values, after saving its own without
 * telling the CFI) are "same value". From there libgcc unwinds the stopped stack with the frames'
 * own .eh_frame (JIT objects registered with __register_frame, libraries through the loader)
 * and never reads the thunk's real callers. The thunk restores its own registers and returns.
 *
 * Thread safe: no state; the stack read must stay unchanged (its thread stopped) during the call.
 */
#include <stdint.h>
#include <unwind.h>

/* What the callback fills: (ip, cfa) per frame, as _Unwind_GetIP and _Unwind_GetCFA give them. */
struct frames {
    uint64_t capacity;
    uint64_t count;
    uint64_t *pairs;
};

int safepointkit_unwind_from(uint64_t cfa, const uint64_t *registers, _Unwind_Trace_Fn trace, void *arg);

/*
 * safepointkit_unwind_from(cfa, registers[6] = {rbx, rbp, r12, r13, r14, r15}, trace, arg):
 * _Unwind_Backtrace(trace, arg) as if called by the frame whose CFA is cfa. The stack stays
 * 16-byte aligned at the call: 8 (return address) + 6 pushes + 8.
 */
__asm__(
    "    .text\n"
    "    .globl safepointkit_unwind_from\n"
    "    .hidden safepointkit_unwind_from\n"
    "    .type safepointkit_unwind_from, @function\n"
    "    .p2align 4\n"
    "safepointkit_unwind_from:\n"
    "    .cfi_startproc\n"
    "    pushq %rbp\n"
    "    .cfi_def_cfa_offset 16\n"
    "    pushq %rbx\n"
    "    .cfi_def_cfa_offset 24\n"
    "    pushq %r12\n"
    "    .cfi_def_cfa_offset 32\n"
    "    pushq %r13\n"
    "    .cfi_def_cfa_offset 40\n"
    "    pushq %r14\n"
    "    .cfi_def_cfa_offset 48\n"
    "    pushq %r15\n"
    "    .cfi_def_cfa_offset 56\n"
    "    subq $8, %rsp\n"
    "    .cfi_def_cfa_offset 64\n"
    "    movq %rdi, (%rsp)\n"
    "    movq %rsi, %rax\n"
    "    movq %rdx, %rdi\n"
    "    movq %rcx, %rsi\n"
    "    movq 0(%rax), %rbx\n"
    "    movq 8(%rax), %rbp\n"
    "    movq 16(%rax), %r12\n"
    "    movq 24(%rax), %r13\n"
    "    movq 32(%rax), %r14\n"
    "    movq 40(%rax), %r15\n"
    "    .cfi_remember_state\n"
    /* DW_CFA_def_cfa_expression, 3 bytes: DW_OP_breg7 (RSP) 0, DW_OP_deref. The return address
       stays at CFA - 8 (the CIE's rule); the pushes above have no rule, so the unwinder takes
       RBX..R15 as they are at the call: the stopped frame's values. */
    "    .cfi_escape 0x0f, 0x03, 0x77, 0x00, 0x06\n"
    "    call _Unwind_Backtrace@PLT\n"
    "    .cfi_restore_state\n"
    "    addq $8, %rsp\n"
    "    .cfi_def_cfa_offset 56\n"
    "    popq %r15\n"
    "    .cfi_def_cfa_offset 48\n"
    "    popq %r14\n"
    "    .cfi_def_cfa_offset 40\n"
    "    popq %r13\n"
    "    .cfi_def_cfa_offset 32\n"
    "    popq %r12\n"
    "    .cfi_def_cfa_offset 24\n"
    "    popq %rbx\n"
    "    .cfi_def_cfa_offset 16\n"
    "    popq %rbp\n"
    "    .cfi_def_cfa_offset 8\n"
    "    ret\n"
    "    .cfi_endproc\n"
    "    .size safepointkit_unwind_from, .-safepointkit_unwind_from\n");

static _Unwind_Reason_Code record(struct _Unwind_Context *context, void *arg) {
    struct frames *f = arg;
    if (f->count == f->capacity) {
        return _URC_NORMAL_STOP;
    }
    f->pairs[2 * f->count] = (uint64_t) _Unwind_GetIP(context);
    f->pairs[2 * f->count + 1] = (uint64_t) _Unwind_GetCFA(context);
    f->count++;
    return _URC_NO_REASON;
}

/*
 * Fills pairs[2k], pairs[2k + 1] with the IP and CFA libgcc reports for the k-th frame of a
 * backtrace started at the frame whose CFA is cfa. libgcc reports with each frame the CFA of the
 * frame below it: frame 0 is the thunk (its IP inside safepointkit_unwind_from); frame 1 has the
 * return address stored at cfa - 8 and CFA cfa, the SP of the frame it returns into; frame k + 1
 * the return address into the k-th frame above that one and that frame's SP at its call.
 * Returns the number of frames, or -1 - reason when libgcc
 * failed otherwise than by reaching a frame it knows no unwind information for, or by filling
 * the capacity.
 */
int64_t safepointkit_backtrace_from(uint64_t cfa, const uint64_t *registers, uint64_t *pairs, uint64_t capacity) {
    struct frames f = {capacity, 0, pairs};
    _Unwind_Reason_Code code = safepointkit_unwind_from(cfa, registers, record, &f);
    if (code != _URC_END_OF_STACK && !(code == _URC_FATAL_PHASE1_ERROR && f.count == f.capacity)) {
        return -1 - (int64_t) code;
    }
    return (int64_t) f.count;
}
