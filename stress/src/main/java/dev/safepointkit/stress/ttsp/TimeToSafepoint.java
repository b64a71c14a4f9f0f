package dev.safepointkit.stress.ttsp;

import dev.safepointkit.roots.Mutator;
import dev.safepointkit.roots.SafepointCoordinator;
import dev.safepointkit.roots.StackWalkException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;

/**
 * Time to safepoint of real JIT code: mutator threads spin in {@code spin_until} (a poll on every
 * back edge) while the calling thread stops and releases them again and again through the
 * {@link SafepointCoordinator}, with an empty action.
 *
 * <p>Two times per stop, in nanoseconds: to safepoint, from the stop request to the last mutator
 * parked ({@link dev.safepointkit.roots.StoppedWorld#requestedNanos} to
 * {@link dev.safepointkit.roots.StoppedWorld#stoppedNanos}, both taken by the coordinator); and the
 * round trip, the whole {@code stopTheWorld} call on the requesting thread (lock, poll words set,
 * every mutator parked, action, poll words cleared, release signalled).
 *
 * <p>Threads: {@link #measure} runs on one thread that is not a mutator; it starts the mutator
 * threads, and collects whatever they throw and rethrows it on the calling thread.
 */
public final class TimeToSafepoint {
    private static final VarHandle WORD = ValueLayout.JAVA_LONG.varHandle();
    /** How long the end of a run waits for the mutator threads to return, a loop without polls included. */
    private static final Duration JOIN_LIMIT = Duration.ofSeconds(60);

    private TimeToSafepoint() {
    }

    /** The times of the measured stops, in nanoseconds. */
    public record Result(int mutators, Histogram toSafepoint, Histogram roundTrip) {}

    /**
     * Measures {@code stops} stops after {@code warmup} unmeasured ones, {@code gapNanos} apart,
     * with {@code mutators} threads in {@code spin_until}.
     *
     * @throws dev.safepointkit.roots.StopTimeoutException when the mutators do not all park
     *     within {@code timeout}
     * @throws StackWalkException when a stop does not find every mutator parked at a poll
     */
    public static Result measure(SpinLoops loops, int mutators, int warmup, int stops, long gapNanos, Duration timeout)
            throws Throwable {
        return measure(loops, mutators, warmup, stops, gapNanos, timeout, SpinLoops::spinUntil);
    }

    static Result measure(SpinLoops loops, int mutators, int warmup, int stops, long gapNanos, Duration timeout, Loop loop)
            throws Throwable {
        if (mutators < 1 || warmup < 0 || stops < 1 || gapNanos < 0) {
            throw new IllegalArgumentException("mutators " + mutators + ", warmup " + warmup + ", stops " + stops
                    + ", gap " + gapNanos + " ns");
        }
        SafepointCoordinator coordinator = loops.coordinator();
        coordinator.stopTimeout(timeout);
        CountDownLatch ready = new CountDownLatch(mutators);
        // Written by each mutator thread before ready counts down (context) or before it ends (failure);
        // read here after the latch or the join.
        AtomicReferenceArray<MemorySegment> contexts = new AtomicReferenceArray<>(mutators);
        AtomicReferenceArray<Throwable> failures = new AtomicReferenceArray<>(mutators);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < mutators; i++) {
            int index = i;
            threads.add(Thread.ofPlatform().daemon().name("spin-" + i).start(() -> {
                boolean counted = false;
                try (Mutator m = coordinator.attach()) {
                    contexts.set(index, m.context());
                    try (Mutator.JitScope scope = m.enter()) {
                        ready.countDown();
                        counted = true;
                        loop.run(loops, m.context());
                    }
                } catch (Throwable t) {
                    failures.set(index, t);
                } finally {
                    if (!counted) {
                        ready.countDown();
                    }
                }
            }));
        }
        Histogram toSafepoint = new Histogram(3);
        Histogram roundTrip = new Histogram(3);
        Throwable failure = null;
        try {
            if (!ready.await(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
                throw new IllegalStateException("the mutator threads did not enter JIT code within " + timeout);
            }
            for (int i = 0; i < mutators; i++) {
                if (contexts.get(i) == null) {
                    throw new IllegalStateException("mutator thread " + i + " did not attach");
                }
            }
            long[] reached = new long[1];
            for (int k = 0; k < warmup + stops; k++) {
                LockSupport.parkNanos(gapNanos);
                long start = System.nanoTime();
                coordinator.stopTheWorld(null, 0, world -> {
                    if (world.parked().size() != mutators || world.outside() != 0) {
                        throw new StackWalkException("a stop found " + world.parked().size() + " of " + mutators
                                + " mutators parked and " + world.outside() + " outside JIT code: it measured no stop of them all");
                    }
                    reached[0] = world.stoppedNanos() - world.requestedNanos();
                });
                long end = System.nanoTime();
                if (k >= warmup) {
                    toSafepoint.recordValue(reached[0]);
                    roundTrip.recordValue(end - start);
                }
            }
        } catch (Throwable t) {
            failure = t;
        } finally {
            failure = release(loops, contexts, threads, failure);
        }
        for (int i = 0; i < mutators; i++) {
            if (failures.get(i) != null) {
                failure = chain(failure, new IllegalStateException("mutator thread " + i + " failed", failures.get(i)));
            }
        }
        if (failure != null) {
            throw failure;
        }
        loops.checkNoFailures();
        return new Result(mutators, toSafepoint, roundTrip);
    }

    /**
     * Sets every quit word, then stops once more so each {@code spin_until} takes its poll, sees it
     * and returns; waits for the threads (up to {@link #JOIN_LIMIT}: a loop that never polls may still be
     * running, and its code must stay mapped until it returns). The quit words are release stores made before the stop
     * takes the coordinator's lock, which the parked mutators take again before they read them.
     */
    private static Throwable release(SpinLoops loops, AtomicReferenceArray<MemorySegment> contexts, List<Thread> threads,
            Throwable failure) {
        for (int i = 0; i < contexts.length(); i++) {
            MemorySegment context = contexts.get(i);
            if (context != null) {
                WORD.setRelease(context, SpinLoops.QUIT_WORD, 1L);
            }
        }
        try {
            loops.coordinator().stopTheWorld(null, 0, world -> { });
        } catch (Throwable t) {
            failure = chain(failure, t);
        }
        long deadline = System.nanoTime() + JOIN_LIMIT.toNanos();
        for (Thread t : threads) {
            try {
                if (!t.join(Duration.ofNanos(Math.max(1, deadline - System.nanoTime())))) {
                    failure = chain(failure, new IllegalStateException(t.getName() + " did not leave JIT code within " + JOIN_LIMIT));
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                failure = chain(failure, e);
            }
        }
        return failure;
    }

    private static Throwable chain(Throwable first, Throwable next) {
        if (first == null) {
            return next;
        }
        first.addSuppressed(next);
        return first;
    }
}
