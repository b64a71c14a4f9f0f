package dev.safepointkit.roots;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Every mutator, stopped: those with JIT frames on their stacks (parked at a poll or slow path, or
 * in native code through an exit), with those stacks, and the number outside JIT code (which hold
 * no JIT frames). Valid only during the {@link WorldAction}, on the thread that runs it: once the
 * action has returned, {@link #validate}, {@link #walkAll} and a walk of any of its {@link #stacks()}
 * throw {@link IllegalStateException}, since the mutators run again, and so does a relocator's
 * write to one of those stacks; {@link #validate} and {@link #walkAll} throw it on any other
 * thread too, whose walk the action's return would not wait for.
 */
public final class StoppedWorld {
    private final List<Mutator> parked;
    private final List<ThreadStack> stacks;
    private final int outside;
    private final long requestedNanos;
    private final long stoppedNanos;
    private JitStackWalker validatedBy;
    /** The coordinator whose stop this is, and the thread that runs its action. */
    private final SafepointCoordinator coordinator;
    private final Thread collector;
    /** Shared with the stacks this stop captured; ended when the action returns. */
    private final Liveness liveness;

    /**
     * Whether a stop is still in progress. Written once (cleared) by the coordinator's collecting
     * thread when the action returns, before any mutator resumes; read by any thread (volatile).
     */
    static final class Liveness {
        private volatile boolean inProgress = true;

        boolean inProgress() {
            return inProgress;
        }

        void end() {
            inProgress = false;
        }
    }

    StoppedWorld(SafepointCoordinator coordinator, Liveness liveness, List<Mutator> parked, List<ThreadStack> stacks,
            int outside, long requestedNanos, long stoppedNanos) {
        this.coordinator = coordinator;
        this.liveness = liveness;
        this.collector = Thread.currentThread();
        this.parked = parked;
        this.stacks = stacks;
        this.outside = outside;
        this.requestedNanos = requestedNanos;
        this.stoppedNanos = stoppedNanos;
    }

    /**
     * Whether this is a stop of {@code coordinator} that is still in progress, asked on the thread
     * that runs its action: only then are that coordinator's mutators stopped. Code that writes
     * what running threads must not see half-done checks this first.
     *
     * @param coordinator the coordinator whose mutators must be stopped
     * @return false once the action has returned, for another coordinator's stop, or on another thread
     */
    public boolean isStopOf(SafepointCoordinator coordinator) {
        return liveness.inProgress() && this.coordinator == coordinator && Thread.currentThread() == collector;
    }

    /** The action returned: the mutators are about to run again. */
    void end() {
        liveness.end();
    }

    /**
     * Fails unless the stop is in progress and this is the thread that runs its action: another
     * thread's walk could still be reading, or a relocator writing, when the action returns and
     * the mutators run again, and nothing would stop it.
     */
    private void requireCollector() {
        if (!liveness.inProgress()) {
            throw new IllegalStateException("this stop has ended: its mutators run again, so its stacks are walked"
                    + " only during its action");
        }
        if (Thread.currentThread() != collector) {
            throw new IllegalStateException(Thread.currentThread() + " walks a stop whose action runs on " + collector
                    + ": only that thread may, since the mutators run again as soon as the action returns");
        }
    }

    /**
     * {@link System#nanoTime} when the stop was requested: a pause is measured from here.
     *
     * @return the time in nanoseconds, comparable only with other {@code nanoTime} values
     */
    public long requestedNanos() {
        return requestedNanos;
    }

    /**
     * {@link System#nanoTime} when the last mutator stopped: the time to safepoint ends here.
     *
     * @return the time in nanoseconds, at or after {@link #requestedNanos()}
     */
    public long stoppedNanos() {
        return stoppedNanos;
    }

    /**
     * Mutators stopped with JIT frames (parked, or in native code through an exit), in the order of {@link #stacks()}.
     *
     * @return the mutators; element {@code i} owns {@code stacks().get(i)}
     */
    public List<Mutator> parked() {
        return parked;
    }

    /**
     * The stack of each stopped mutator with JIT frames: its runs, innermost first.
     *
     * @return one stack per element of {@link #parked()}, valid only during the action
     */
    public List<ThreadStack> stacks() {
        return stacks;
    }

    /**
     * Mutators that were outside JIT code.
     *
     * @return how many attached mutators had no JIT frames to walk
     */
    public int outside() {
        return outside;
    }

    /**
     * The context block of parked mutator {@code i}, for a runtime that keeps per-thread state in
     * its client area (a thread-local allocation buffer to reset, say).
     *
     * @param i in {@code [0, parked().size())}
     * @return the mutator's context block
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public MemorySegment context(int i) {
        return parked.get(i).context;
    }

    /**
     * Walks and checks every stopped stack, every run, every root location, visiting nothing. A
     * collector calls it before it changes anything (or lets {@link #walkAll} do so), so that a walk
     * error leaves every stack and the heap as they were.
     *
     * @param walker the collecting thread's walker; {@link #walkAll} with the same walker then
     *     skips validating again
     * @return the frames walked
     * @throws StackWalkException if any stack cannot be walked precisely; nothing was visited
     * @throws IllegalStateException if the stop has ended (the action returned), or on a thread
     *     other than the one that runs the action
     */
    public long validate(JitStackWalker walker) throws StackWalkException {
        requireCollector();
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
     * @param walker the collecting thread's walker
     * @param visitor gets each frame's roots, stack by stack in the order of {@link #stacks()}
     * @return the frames visited
     * @throws StackWalkException if validation fails (before any visit), or the visitor throws one
     * @throws IllegalStateException if the stop has ended (the action returned), or on a thread
     *     other than the one that runs the action
     */
    public long walkAll(JitStackWalker walker, RootVisitor visitor) throws StackWalkException {
        requireCollector();
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
