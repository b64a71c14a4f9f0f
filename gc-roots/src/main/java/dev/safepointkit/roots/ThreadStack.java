package dev.safepointkit.roots;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Objects;

/**
 * What a stop captured of one thread, and the memory to walk: its runs of JIT frames, innermost
 * first. Immutable; valid while the thread stays stopped.
 *
 * <p>A stack a {@link SafepointCoordinator} captured belongs to its stop: once the stop's action
 * has returned, {@link JitStackWalker} refuses to walk it and {@link RootRelocator} to write to it
 * (the thread runs again, and a walk would read, and a relocation write, a live stack). A stack made with a public constructor (a test's,
 * a benchmark's captured copy) belongs to no stop; its maker keeps it valid.
 *
 * <p>Threads: any thread may read it; a walk of a coordinator's stack belongs on the thread that
 * runs the stop's action (see {@link StoppedWorld}).
 */
public final class ThreadStack {
    private final MemorySegment memory;
    private final List<Run> runs;
    /** The stop this stack was captured by; null for a stack that belongs to no stop. */
    private final StoppedWorld.Liveness stop;
    /** With {@link #stop}: the stopped thread, as errors name it ("mutator 0 (main)"). */
    private final String owner;

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
     * A stack of the given runs, belonging to no stop.
     *
     * @param memory the thread's stack from the innermost run's return-address slot up to the
     *     outermost run's entry, as a segment whose address is the lowest stack address it covers:
     *     every read of the walk is checked against it, so a corrupt frame size ends the walk with an
     *     error, not a crash
     * @param runs the runs, innermost first; each lies above the one before it; copied
     * @throws NullPointerException if {@code memory} or {@code runs} is null
     * @throws IllegalArgumentException if there is no run
     */
    public ThreadStack(MemorySegment memory, List<Run> runs) {
        this(memory, runs, null, null);
    }

    /** A stack of {@code owner}'s thread, captured by the stop whose liveness is {@code stop}. */
    ThreadStack(MemorySegment memory, List<Run> runs, StoppedWorld.Liveness stop, String owner) {
        this.memory = Objects.requireNonNull(memory);
        this.runs = List.copyOf(runs);
        if (this.runs.isEmpty()) {
            throw new IllegalArgumentException("a thread stack with no run of JIT frames");
        }
        this.stop = stop;
        this.owner = owner;
    }

    /**
     * The memory to walk.
     *
     * @return the thread's stack, as given to the constructor
     */
    public MemorySegment memory() {
        return memory;
    }

    /**
     * The runs of JIT frames.
     *
     * @return an unmodifiable list, innermost first
     */
    public List<Run> runs() {
        return runs;
    }

    /**
     * Fails when this stack was captured by a stop that has ended.
     *
     * @throws IllegalStateException naming the stack, once the stop's action has returned
     */
    void requireStopped() {
        if (stop != null && !stop.inProgress()) {
            throw new IllegalStateException("the stack from 0x" + Long.toHexString(returnAddressSlot())
                    + " belongs to a stop that has ended: its thread runs again, so it is walked only during the"
                    + " stop's action");
        }
    }

    @Override
    public String toString() {
        return "ThreadStack[0x" + Long.toHexString(memory.address()) + ", " + memory.byteSize() + " bytes, runs=" + runs + "]";
    }

    /**
     * A stack of one run.
     *
     * @param memory the thread's stack, as for {@link #ThreadStack(MemorySegment, List)}
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

    /**
     * Writes the 8-byte word at stack address {@code address}: a relocated root. Fails outside the
     * stack, and, for a stack a stop captured, once that stop has ended: its thread runs again and
     * may be using the slot, so the write would corrupt a live frame. The check comes before the
     * write, not only at the end of the walk, where it could only report the damage.
     */
    void write(long address, long value) throws StackWalkException {
        if (stop != null && !stop.inProgress()) {
            throw new IllegalStateException(owner + ": refused a write to its stack at 0x" + Long.toHexString(address)
                    + ": the stop that captured it has ended and the thread runs again");
        }
        word(address);
        memory.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, address - memory.address(), value);
    }
}
