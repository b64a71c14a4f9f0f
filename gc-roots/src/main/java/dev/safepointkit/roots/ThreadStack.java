package dev.safepointkit.roots;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * What a safepoint poll captured of one stopped thread, and the memory to walk.
 *
 * @param memory the thread's stack from {@code returnAddressSlot} up to {@code entrySp}, as a
 *     segment whose address is the lowest stack address it covers: every read of the walk is
 *     checked against it, so a corrupt frame size ends the walk with an error, not a crash
 * @param returnAddressSlot where the poll's return address (into the innermost JIT frame) is stored:
 *     the innermost frame's SP at the call, minus 8
 * @param entrySp the SP at which the thread entered JIT code from Java: the walk stops when a
 *     frame's caller SP reaches it
 * @param registers the innermost frame's callee-saved registers, as the poll saved them
 */
public record ThreadStack(MemorySegment memory, long returnAddressSlot, long entrySp, SavedRegisters registers) {

    public ThreadStack {
        Objects.requireNonNull(memory);
        Objects.requireNonNull(registers);
    }

    /** Reads the 8-byte word at stack address {@code address}; fails outside the stack. */
    long word(long address) throws StackWalkException {
        long offset = address - memory.address();
        if (offset < 0 || offset > memory.byteSize() - 8) {
            throw new StackWalkException("stack address 0x" + Long.toHexString(address) + " is outside the stack [0x"
                    + Long.toHexString(memory.address()) + ", 0x" + Long.toHexString(memory.address() + memory.byteSize()) + ")");
        }
        return memory.get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, offset);
    }

    void write(long address, long value) throws StackWalkException {
        word(address);
        memory.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, address - memory.address(), value);
    }
}
