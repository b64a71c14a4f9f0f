package dev.safepointkit.roots;

/**
 * How long a thread spins for an event before it blocks, learnt from how its last spins ended.
 * A spin that saw the event doubles the budget (from {@code min} up to {@code max}); one that
 * ran out ends the spinning, but for one probe of {@code min} every {@code probeEvery} waits, so
 * that spinning comes back once it pays again. Spinning pays when the thread that makes the
 * event is on another core; when that thread waits for this one's core (the spinner took it from
 * it), a spin runs out and only delays it, as long as it lasts: so one such spin ends them, while
 * a spin that saw gains back only its double.
 *
 * <p>Not thread safe: {@link SafepointCoordinator} uses it under its lock. It is only a heuristic: no
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

    /** The spin that {@link #next} gave saw the event ({@code true}) or ran out ({@code false}: no more spins but probes). */
    void spun(boolean saw) {
        if (saw) {
            nanos = Math.min(max, Math.max(min, nanos * 2));
        } else {
            nanos = 0;
        }
    }
}
