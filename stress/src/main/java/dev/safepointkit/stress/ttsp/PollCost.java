package dev.safepointkit.stress.ttsp;

import dev.safepointkit.roots.Mutator;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The cost of a poll on every back edge: {@code spin_polled} against {@code spin_plain}, the same
 * loop without polls, timed in alternating rounds on one mutator thread with no stop requested.
 * Both must return the same value, or they are not the same loop.
 *
 * <p>Threads: {@link #measure} from any thread that is not a mutator; it runs the loops on a new
 * thread and rethrows what that thread throws.
 */
public final class PollCost {
    private PollCost() {
    }

    /**
     * Nanoseconds per iteration of each round, and the overhead of each round pair in percent.
     *
     * @param plain per round, {@code spin_plain}
     * @param polled per round, {@code spin_polled}
     * @param overheadPercent per round, {@code (polled / plain - 1) * 100}
     */
    public record Result(double[] plain, double[] polled, double[] overheadPercent) {
        public double medianPlain() {
            return median(plain);
        }

        public double medianPolled() {
            return median(polled);
        }

        public double medianOverheadPercent() {
            return median(overheadPercent);
        }
    }

    /** Runs {@code warmup} unmeasured round pairs, then {@code rounds} measured ones, of {@code iterations} each. */
    public static Result measure(SpinLoops loops, long iterations, int warmup, int rounds) throws Throwable {
        if (iterations < 1 || warmup < 0 || rounds < 1) {
            throw new IllegalArgumentException("iterations " + iterations + ", warmup " + warmup + ", rounds " + rounds);
        }
        double[] plain = new double[rounds];
        double[] polled = new double[rounds];
        double[] overhead = new double[rounds];
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread t = Thread.ofPlatform().name("poll-cost").start(() -> {
            try (Mutator m = loops.coordinator().attach(); Mutator.JitScope scope = m.enter()) {
                MemorySegment context = m.context();
                for (int r = -warmup; r < rounds; r++) {
                    // Alternate which loop runs first, so neither always runs on a warmer or colder core.
                    boolean plainFirst = (r & 1) == 0;
                    long start = System.nanoTime();
                    long a = plainFirst ? loops.spinPlain(context, iterations) : loops.spinPolled(context, iterations);
                    long middle = System.nanoTime();
                    long b = plainFirst ? loops.spinPolled(context, iterations) : loops.spinPlain(context, iterations);
                    long end = System.nanoTime();
                    if (a != b) {
                        throw new IllegalStateException("spin_plain and spin_polled disagree after " + iterations
                                + " iterations: " + a + " and " + b);
                    }
                    if (r >= 0) {
                        double first = (double) (middle - start) / iterations;
                        double second = (double) (end - middle) / iterations;
                        plain[r] = plainFirst ? first : second;
                        polled[r] = plainFirst ? second : first;
                        overhead[r] = (polled[r] / plain[r] - 1) * 100;
                    }
                }
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        t.join();
        if (failure.get() != null) {
            throw failure.get();
        }
        loops.checkNoFailures();
        return new Result(plain, polled, overhead);
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
