package dev.safepointkit.stress.ttsp;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;

/**
 * Time to safepoint of 1, 2 and 4 mutators in JIT loops against the same loop on HotSpot (a child
 * JVM under {@code -Xlog:safepoint}, run right after each of ours), then the poll's cost. Prints
 * p50 / p99 / max in microseconds and the ratios; writes HotSpot's logs to {@code LOG_DIR}.
 *
 * <p>{@code java -Dsafepointkit.root=ROOT -cp stress/target/benchmarks.jar
 * dev.safepointkit.stress.ttsp.TtspBenchmark LOG_DIR [STOPS] [GAP_MICROS] [POLL_ITERATIONS]}
 */
public final class TtspBenchmark {
    private static final int[] MUTATORS = {1, 2, 4};
    /**
     * Stops before the measured ones, on each side: about two seconds at the default gap. With 200
     * (a fifth of a second) the first seconds of this JVM's life were measured, while C2 still
     * compiled the loader's and coordinator's code on one of the two cores: stops came in bursts of
     * tens of consecutive slow ones (the mutator reached its poll 20 to 60 us late and then took as
     * long again to take the lock), which set the p99; a second measurement in the same JVM had
     * none of them. HotSpot's side gets the same number.
     */
    private static final int WARMUP = 2000;
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private TtspBenchmark() {
    }

    public static void main(String[] args) throws Throwable {
        Path logs = Path.of(args[0]);
        int stops = args.length > 1 ? Integer.parseInt(args[1]) : 2000;
        long gapNanos = (args.length > 2 ? Long.parseLong(args[2]) : 1000) * 1000;
        long iterations = args.length > 3 ? Long.parseLong(args[3]) : 200_000_000L;
        Files.createDirectories(logs);
        System.out.printf("time to safepoint, %d stops after %d warm-up, %d us apart; times in us (p50 / p99 / max)%n",
                stops, WARMUP, gapNanos / 1000);
        try (SpinLoops loops = new SpinLoops()) {
            for (int mutators : MUTATORS) {
                TimeToSafepoint.Result ours = TimeToSafepoint.measure(loops, mutators, WARMUP, stops, gapNanos, TIMEOUT);
                SafepointLog.Times hotspot = hotspot(logs.resolve("hotspot-" + mutators + ".log"), mutators, stops, gapNanos);
                System.out.printf("%d mutator(s): to safepoint ours %s, HotSpot %s, p99 ours/HotSpot %.3gx%n",
                        mutators, spread(ours.toSafepoint()), spread(hotspot.reaching()),
                        ratio(ours.toSafepoint(), hotspot.reaching(), 99));
                System.out.printf("%d mutator(s): round trip ours %s (empty action); HotSpot's Total %s (with the thread dump)%n",
                        mutators, spread(ours.roundTrip()), spread(hotspot.total()));
            }
            PollCost.Result cost = PollCost.measure(loops, iterations, 2, 11);
            System.out.printf("poll cost, %,d iterations x 11 rounds: without polls %.3f ns/iteration (best %.3f), with %.3f"
                    + " (best %.3f); overhead median of rounds %.1f%% (%.1f%% to %.1f%%), of the best %.1f%%%n", iterations,
                    cost.medianPlain(), min(cost.plain()), cost.medianPolled(), min(cost.polled()), cost.medianOverheadPercent(),
                    min(cost.overheadPercent()), max(cost.overheadPercent()), (min(cost.polled()) / min(cost.plain()) - 1) * 100);
        }
    }

    /** Runs {@link HotSpotSpin} in a child JVM of this one's Java, logging safepoints to {@code log}. */
    private static SafepointLog.Times hotspot(Path log, int mutators, int stops, long gapNanos) throws Exception {
        Files.deleteIfExists(log);
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(java.toString(), "-Xlog:safepoint:file=" + log, "-cp", System.getProperty("java.class.path"),
                HotSpotSpin.class.getName(), Integer.toString(mutators), Integer.toString(WARMUP), Integer.toString(stops),
                Long.toString(gapNanos)).inheritIO().start();
        long budgetSeconds = 120 + (WARMUP + stops) * (gapNanos + 10_000_000L) / 1_000_000_000L;
        if (!p.waitFor(budgetSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("HotSpotSpin with " + mutators + " threads did not finish within " + budgetSeconds + " s");
        }
        if (p.exitValue() != 0) {
            throw new IllegalStateException("HotSpotSpin with " + mutators + " threads exited with " + p.exitValue());
        }
        List<String> lines = Files.readAllLines(log);
        return SafepointLog.parse(lines, HotSpotSpin.OPERATION, WARMUP, stops);
    }

    static String spread(Histogram h) {
        return String.format("%.1f / %.1f / %.1f", h.getValueAtPercentile(50) / 1e3, h.getValueAtPercentile(99) / 1e3,
                h.getMaxValue() / 1e3);
    }

    private static double ratio(Histogram ours, Histogram theirs, double percentile) {
        return (double) ours.getValueAtPercentile(percentile) / theirs.getValueAtPercentile(percentile);
    }

    private static double min(double[] values) {
        double m = Double.POSITIVE_INFINITY;
        for (double v : values) {
            m = Math.min(m, v);
        }
        return m;
    }

    private static double max(double[] values) {
        double m = Double.NEGATIVE_INFINITY;
        for (double v : values) {
            m = Math.max(m, v);
        }
        return m;
    }
}
