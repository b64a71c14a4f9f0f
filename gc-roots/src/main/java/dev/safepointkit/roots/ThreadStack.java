package dev.safepointkit.roots;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Objects;

/**
 * What a stop captured of one thread, and the memory to walk: its runs of JIT frames, innermost
 * first. Immutable; valid while the thread stays stopped.
 *
 * @param memory the thread's stack from the innermost run's return-address slot up to the
 *     outermost run's entry, as a segment whose address is the lowest stack address it covers:
 *     every read of the walk is checked against it, so a corrupt frame size ends the walk with an
 *     error, not a crash
 * @param runs the runs, innermost first; each lies above the one before it
 */
public record ThreadStack(MemorySegment memory, List<Run> runs) {

    /**
     * One run of JIT frames.
     *
     * @param returnAddressSlot where the return address into the run's innermost JIT frame is stored
     *     (by the poll, slow path or exit that left it): that frame's SP at the call, minus 8
     * @param entrySp the SP just above the run's entry slot, the return-address slot of the first
     *     JIT function foreign code called: the walk of the run must arrive exactly at that slot
     * @param registers the innermost frame's callee-saved registers, as the poll or exit saved them
     */
    public record Run(long returnAddressSlot, long entrySp, SavedRegisters registers) {
        /**
         * Checks that {@code registers} is given; the addresses are checked by the walk.
         *
         * @throws NullPointerException if {@code registers} is null (use {@link SavedRegisters#none()})
         */
        public Run {
            Objects.requireNonNull(registers);
        }

        /**
         * The slot a walk of this run ends at.
         *
         * @return {@code entrySp - 8}, the absolute address of the entry function's return-address slot
         */
        public long entrySlot() {
            return entrySp - 8;
        }
    }

    /**
     * Copies {@code runs} into an unmodifiable list.
     *
     * @throws NullPointerException if {@code memory} or {@code runs} is null
     * @throws IllegalArgumentException if there is no run
     */
    public ThreadStack {
        Objects.requireNonNull(memory);
        runs = List.copyOf(runs);
        if (runs.isEmpty()) {
            throw new IllegalArgumentException("a thread stack with no run of JIT frames");
        }
    }

    /**
     * A stack of one run.
     *
     * @param memory the thread's stack, as for the canonical constructor
     * @param returnAddressSlot where the return address into the innermost JIT frame is stored
     * @param entrySp the SP just above the run's entry slot
     * @param registers the innermost frame's saved registers
     * @throws NullPointerException if {@code memory} or {@code registers} is null
     */
    public ThreadStack(MemorySegment memory, long returnAddressSlot, long entrySp, SavedRegisters registers) {
        this(memory, List.of(new Run(returnAddressSlot, entrySp, registers)));
    }

    /**
     * The innermost run's return-address slot: where the walk starts.
     *
     * @return an absolute stack address
     */
    public long returnAddressSlot() {
        return runs.getFirst().returnAddressSlot();
    }

    /**
     * The outermost run's entry SP: where the walk ends.
     *
     * @return an absolute stack address, 8 above the outermost run's entry slot
     */
    public long entrySp() {
        return runs.getLast().entrySp();
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
