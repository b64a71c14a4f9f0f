package dev.safepointkit.stress.registry;

import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.StackMapSection;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.HdrHistogram.Histogram;

/**
 * The distribution of single lookups in a registry of 1,000,000 safepoints while another thread
 * registers and unregisters an object of 1,000 safepoints in a loop. Each lookup is timed with
 * {@link System#nanoTime()}; the timer's own cost, measured the same way with nothing between the
 * two reads, is printed beside it.
 *
 * <p>{@code java -cp stress/target/benchmarks.jar dev.safepointkit.stress.registry.LookupLatency [SAFEPOINTS] [SECONDS]}
 */
public final class LookupLatency {
    private LookupLatency() {
    }

    public static void main(String[] args) throws Exception {
        int safepoints = args.length > 0 ? Integer.parseInt(args[0]) : 1_000_000;
        int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        int objects = LookupWorkload.objectsFor(safepoints);
        SafepointRegistry registry = LookupWorkload.registry(objects);
        long[] keys = LookupWorkload.keys(objects, 1 << 16, true, 7);
        int writerObject = objects + 1;
        StackMapSection writerSection = LookupWorkload.section(writerObject);

        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong loads = new AtomicLong();
        // A writer that fails would leave the lookups timed without it: its failure is rethrown below.
        AtomicReference<Throwable> writerFailure = new AtomicReference<>();
        Thread writer = new Thread(() -> {
            try {
                while (!stop.get()) {
                    LookupWorkload.register(registry, writerObject, writerSection);
                    registry.unregister(writerObject);
                    loads.incrementAndGet();
                }
            } catch (Throwable t) {
                writerFailure.set(t);
            }
        }, "writer");
        writer.setDaemon(true);
        writer.start();

        Frame frame = new Frame();
        Histogram lookups = new Histogram(3);
        Histogram timer = new Histogram(3);
        long sink = 0;
        // Warm-up: the same loop, unrecorded, until the JIT has compiled it.
        long warmEnd = System.nanoTime() + 3_000_000_000L;
        for (int i = 0; System.nanoTime() < warmEnd; i++) {
            sink += LookupWorkload.frameSize(registry, frame, keys[i & (keys.length - 1)]);
        }
        long loadsBefore = loads.get();
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        long misses = 0;
        for (int i = 0; ; i++) {
            long key = keys[i & (keys.length - 1)];
            long t0 = System.nanoTime();
            long size = LookupWorkload.frameSize(registry, frame, key);
            long t1 = System.nanoTime();
            lookups.recordValue(t1 - t0);
            long t2 = System.nanoTime();
            timer.recordValue(t2 - t1);
            sink += size;
            if (size < 0) {
                misses++;
            }
            if ((i & 0xFFF) == 0 && t2 > end) {
                break;
            }
        }
        stop.set(true);
        writer.join();
        if (writerFailure.get() != null) {
            throw new IllegalStateException("the writer thread failed after " + loads.get() + " register/unregister rounds",
                    writerFailure.get());
        }
        long writes = loads.get() - loadsBefore;
        System.out.printf("registry of %,d safepoints in %,d objects; a writer registered and unregistered an object"
                + " of %,d safepoints %,d times (%.0f/s) during %d s%n", registry.safepointCount(), registry.objectCount(),
                LookupWorkload.PER_OBJECT, writes, writes / (double) seconds, seconds);
        System.out.printf("%-26s %10s %8s %8s %8s %8s %8s  (ns)%n", "", "count", "p50", "p99", "p99.9", "p99.99", "max");
        print("lookup (timer included)", lookups);
        print("timer alone", timer);
        if (misses != 0) {
            throw new AssertionError(misses + " lookups missed a registered safepoint");
        }
        if (sink == 42) {
            System.out.println();
        }
    }

    private static void print(String label, Histogram h) {
        System.out.printf("%-26s %,10d %8d %8d %8d %8d %8d%n", label, h.getTotalCount(), h.getValueAtPercentile(50),
                h.getValueAtPercentile(99), h.getValueAtPercentile(99.9), h.getValueAtPercentile(99.99), h.getMaxValue());
    }
}
