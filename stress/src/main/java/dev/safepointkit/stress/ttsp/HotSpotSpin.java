package dev.safepointkit.stress.ttsp;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.locks.LockSupport;

/**
 * HotSpot's side of the comparison, run in its own JVM under {@code -Xlog:safepoint}: the loop of
 * {@code spin_until} in Java (the same recurrence, a volatile quit flag in place of the quit word),
 * on {@code mutators} threads, while the main thread asks for a safepoint operation
 * ({@link Thread#getAllStackTraces}, HotSpot's "ThreadDump") {@code warmup + stops} times,
 * {@code gapNanos} apart. C2 keeps a safepoint poll on the loop's back edge: it is not a counted loop.
 * {@link SafepointLog} reads the times from the log.
 *
 * <p>{@code java -Xlog:safepoint:file=LOG HotSpotSpin MUTATORS WARMUP STOPS GAP_NANOS}
 *
 * <p>Threads: the spinning threads only read {@link #quit}, which main writes once at the end.
 */
public final class HotSpotSpin {
    /** The operation each requested safepoint runs, as the log names it. */
    public static final String OPERATION = "ThreadDump";

    private static volatile boolean quit;

    private HotSpotSpin() {
    }

    public static void main(String[] args) throws Exception {
        int mutators = Integer.parseInt(args[0]);
        int warmup = Integer.parseInt(args[1]);
        int stops = Integer.parseInt(args[2]);
        long gapNanos = Long.parseLong(args[3]);
        CountDownLatch started = new CountDownLatch(mutators);
        long[] sums = new long[mutators];
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < mutators; i++) {
            int index = i;
            threads.add(Thread.ofPlatform().name("spin-" + i).start(() -> {
                started.countDown();
                sums[index] = spin();
            }));
        }
        started.await();
        // Time for C2 to compile the loop (on-stack replacement) before the first stop.
        Thread.sleep(1000);
        for (int k = 0; k < warmup + stops; k++) {
            LockSupport.parkNanos(gapNanos);
            Thread.getAllStackTraces();
        }
        quit = true;
        long sum = 0;
        for (Thread t : threads) {
            t.join();
        }
        for (long s : sums) {
            sum += s;
        }
        System.out.println("spun " + mutators + " threads, recurrence " + sum);
    }

    private static long spin() {
        long acc = 1;
        long i = 0;
        while (!quit) {
            acc = acc * 6364136223846793005L + i;
            i++;
        }
        return acc;
    }
}
