package dev.safepointkit.roots;

/**
 * How long a thread spins for an event before it blocks, learnt from how its last spins ended.
 * A spin that saw the event doubles the budget (up to {@code max}); one that ran out halves it,
 * and below {@code min} the thread does not spin at all, but for one probe of {@code min} every
 * {@code probeEvery} waits, so that a budget lost while the machine was busy comes back once it
 * is quiet. Spinning pays when the thread that makes the event is on another core; when it waits
 * for this thread's core (the spinner took it from it), every spin runs out and only delays it,
 * and the budget soon stops that.
 *
 * <p>Not thread safe: one owner, which uses it from one thread at a time ({@link SafepointCoordinator}'s
 * under its lock, a {@link Mutator}'s on the mutator's thread). It is only a heuristic: no
 * outcome of it decides a state, only how soon a thread looks at one.
 */
final class SpinBudget {
    private final long max;
    private final long min;
    private final int probeEvery;
    private long nanos;
    private int waitsSinceProbe;

    /**
     * A budget that starts at {@code max}.
     *
     * @throws IllegalArgumentException unless {@code 0 < min <= max} and {@code probeEvery >= 1}
     */
    SpinBudget(long max, long min, int probeEvery) {
        if (min <= 0 || min > max || probeEvery < 1) {
            throw new IllegalArgumentException("spin budget max " + max + " ns, min " + min + " ns, probe every " + probeEvery);
        }
        this.max = max;
        this.min = min;
        this.probeEvery = probeEvery;
        this.nanos = max;
    }

    /**
     * The spin for the next wait, in nanoseconds; 0 for none. Counts the wait; a nonzero answer
     * must be followed by {@link #spun} with the spin's outcome.
     */
    long next() {
        if (nanos > 0) {
            return nanos;
        }
        if (++waitsSinceProbe >= probeEvery) {
            waitsSinceProbe = 0;
            return min;
        }
        return 0;
    }

    /** The spin that {@link #next} gave saw the event ({@code true}) or ran out ({@code false}). */
    void spun(boolean saw) {
        if (saw) {
            nanos = Math.min(max, Math.max(min, nanos * 2));
        } else {
            nanos = nanos / 2 < min ? 0 : nanos / 2;
        }
    }
}
