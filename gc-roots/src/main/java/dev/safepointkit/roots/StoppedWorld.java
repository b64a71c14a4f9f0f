package dev.safepointkit.roots;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Every mutator, stopped: those parked at a poll with their stacks, and the number outside JIT
 * code (which hold no JIT frames). Valid only during the {@link WorldAction}.
 */
public final class StoppedWorld {
    private final List<Mutator> parked;
    private final List<ThreadStack> stacks;
    private final int outside;
    private final long requestedNanos;
    private final long stoppedNanos;

    StoppedWorld(List<Mutator> parked, List<ThreadStack> stacks, int outside, long requestedNanos, long stoppedNanos) {
        this.parked = parked;
        this.stacks = stacks;
        this.outside = outside;
        this.requestedNanos = requestedNanos;
        this.stoppedNanos = stoppedNanos;
    }

    /** {@link System#nanoTime} when the stop was requested: a pause is measured from here. */
    public long requestedNanos() {
        return requestedNanos;
    }

    /** {@link System#nanoTime} when the last mutator stopped: the time to safepoint ends here. */
    public long stoppedNanos() {
        return stoppedNanos;
    }

    /** Mutators stopped inside JIT code, in the same order as {@link #stacks()}. */
    public List<Mutator> parked() {
        return parked;
    }

    /** The stack of each parked mutator, from its poll's return-address slot to its entry. */
    public List<ThreadStack> stacks() {
        return stacks;
    }

    /** Mutators that were outside JIT code. */
    public int outside() {
        return outside;
    }

    /** The context block of parked mutator {@code i}. */
    public MemorySegment context(int i) {
        return parked.get(i).context;
    }

    /** Walks every parked thread's JIT frames; returns the frames visited. */
    public long walkAll(JitStackWalker walker, RootVisitor visitor) throws StackWalkException {
        long frames = 0;
        for (ThreadStack stack : stacks) {
            frames += walker.walk(stack, visitor);
        }
        return frames;
    }
}
