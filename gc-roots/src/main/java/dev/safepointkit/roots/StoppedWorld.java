package dev.safepointkit.roots;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Every mutator, stopped: those with JIT frames on their stacks (parked at a poll or slow path, or
 * in native code through an exit), with those stacks, and the number outside JIT code (which hold
 * no JIT frames). Valid only during the {@link WorldAction}, on the thread that runs it.
 */
public final class StoppedWorld {
    private final List<Mutator> parked;
    private final List<ThreadStack> stacks;
    private final int outside;
    private final long requestedNanos;
    private final long stoppedNanos;
    private JitStackWalker validatedBy;

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

    /** Mutators stopped with JIT frames (parked, or in native code through an exit), in the order of {@link #stacks()}. */
    public List<Mutator> parked() {
        return parked;
    }

    /** The stack of each stopped mutator with JIT frames: its runs, innermost first. */
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

    /**
     * Walks and checks every stopped stack, every run, every root location, visiting nothing. A
     * collector calls it before it changes anything (or lets {@link #walkAll} do so), so that a walk
     * error leaves every stack and the heap as they were.
     *
     * @return the frames walked
     */
    public long validate(JitStackWalker walker) throws StackWalkException {
        long frames = 0;
        for (ThreadStack stack : stacks) {
            frames += walker.validate(stack);
        }
        validatedBy = walker;
        return frames;
    }

    /**
     * Walks every stopped thread's JIT frames and hands their roots to {@code visitor}, in two
     * phases: first every stack is validated (unless {@link #validate} already did so with this
     * walker), so a walk error is thrown before the visitor has seen a single root; then the roots
     * are visited.
     *
     * @return the frames visited
     */
    public long walkAll(JitStackWalker walker, RootVisitor visitor) throws StackWalkException {
        if (validatedBy != walker) {
            validate(walker);
        }
        long frames = 0;
        for (ThreadStack stack : stacks) {
            frames += walker.walk(stack, visitor);
        }
        return frames;
    }
}
