package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The stop-the-world protocol with Java threads playing JIT code: a "JIT loop" that reads its
 * poll word from the context block and calls {@link SafepointCoordinator#poll} when it is set,
 * exactly as the compiled poll sites do. (Real JIT code runs through it in the demo's tests.)
 */
class SafepointCoordinatorTest {

    /** A mutator thread spinning in "JIT code" until told to stop; it polls like compiled code. */
    private static final class Spinner {
        final Thread thread;
        final CountDownLatch inJit = new CountDownLatch(1);
        final AtomicBoolean quit = new AtomicBoolean();
        final AtomicLong iterations = new AtomicLong();
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        volatile Mutator mutator;
        volatile long slot;

        Spinner(SafepointCoordinator c, MemorySegment stack) {
            // Whatever fails on this thread, attaching and detaching included, goes to failure,
            // which the test rethrows after joining it.
            thread = Thread.ofPlatform().start(() -> {
                try (Mutator m = c.attach()) {
                    mutator = m;
                    // A fake stack: the entry slot above the poll slot, as compiled code records them.
                    slot = stack.address() + 64;
                    m.context().set(ValueLayout.JAVA_LONG, Mutator.ENTRY_SLOT, stack.address() + 256);
                    try (var scope = m.enter()) {
                        inJit.countDown();
                        while (!quit.get()) {
                            iterations.incrementAndGet();
                            if ((long) ValueLayout.JAVA_LONG.varHandle().getOpaque(m.context(), Mutator.POLL_WORD) != 0) {
                                c.poll(m.context(), slot);
                            }
                        }
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
        }

        /** Fails with what this spinner's thread threw, if it threw anything. */
        void rethrowFailure() {
            if (failure.get() != null) {
                throw new AssertionError("a spinner thread failed", failure.get());
            }
        }
    }

    @Test
    void everyMutatorInJitCodeIsParkedAtItsPollWhileTheActionRuns() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(16);
        try (Arena arena = Arena.ofShared()) {
            List<Spinner> spinners = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                spinners.add(new Spinner(c, arena.allocate(512, 16)));
            }
            for (Spinner s : spinners) {
                if (!s.inJit.await(10, TimeUnit.SECONDS)) {
                    s.rethrowFailure();
                    throw new AssertionError("a spinner did not reach JIT code within 10 s");
                }
            }
            for (int stop = 0; stop < 50; stop++) {
                c.stopTheWorld(null, 0, world -> {
                    assertEquals(3, world.parked().size());
                    assertEquals(0, world.outside());
                    long[] before = new long[3];
                    for (int i = 0; i < 3; i++) {
                        before[i] = spinners.get(i).iterations.get();
                    }
                    try {
                        Thread.sleep(1);
                    } catch (InterruptedException e) {
                        throw new AssertionError(e);
                    }
                    for (int i = 0; i < 3; i++) {
                        Spinner s = spinners.get(i);
                        assertEquals(before[i], s.iterations.get(), "a parked mutator does not run");
                        int at = world.parked().indexOf(s.mutator);
                        ThreadStack stack = world.stacks().get(at);
                        assertEquals(s.slot, stack.returnAddressSlot());
                        assertEquals(s.slot + 192 + 8, stack.entrySp());
                    }
                });
            }
            assertEquals(50, c.stops());
            for (Spinner s : spinners) {
                long seen = s.iterations.get();
                while (s.iterations.get() == seen && s.thread.isAlive()) {
                    Thread.onSpinWait();  // resumed (or died, which the failure then says)
                }
                s.quit.set(true);
                s.thread.join();
                s.rethrowFailure();
            }
            assertEquals(0, c.mutatorCount());
        }
    }

    @Test
    void aMutatorOutsideJitCodeCountsAsStoppedAndCannotEnterUntilTheStopEnds() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        Mutator m = c.attach();
        CountDownLatch inAction = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicBoolean entered = new AtomicBoolean();
        // Whatever the collector thread asserts reaches this thread through this reference.
        AtomicReference<Throwable> collectorFailure = new AtomicReference<>();
        Thread collector = Thread.ofPlatform().start(() -> {
            try {
                c.stopTheWorld(null, 0, world -> {
                    assertEquals(1, world.outside());
                    assertTrue(world.parked().isEmpty());
                    inAction.countDown();
                    try {
                        release.await();
                    } catch (InterruptedException e) {
                        throw new AssertionError(e);
                    }
                    assertFalse(entered.get(), "no mutator entered JIT code during the stop");
                });
            } catch (Throwable t) {
                collectorFailure.set(t);
            } finally {
                inAction.countDown();
            }
        });
        assertTrue(inAction.await(10, TimeUnit.SECONDS));
        // This thread is the mutator: entering blocks until the collector releases the world.
        Thread releaser = Thread.ofPlatform().start(() -> {
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            release.countDown();
        });
        try (var scope = m.enter()) {
            entered.set(true);
        }
        collector.join();
        releaser.join();
        if (collectorFailure.get() != null) {
            throw new AssertionError("the collector thread failed", collectorFailure.get());
        }
        m.close();
    }

    @Test
    void nestedEntriesAndForeignThreadsAreRefused() {
        SafepointCoordinator c = new SafepointCoordinator(0);
        Mutator m = c.attach();
        assertThrows(IllegalStateException.class, c::attach, "one mutator per thread");
        try (var scope = m.enter()) {
            IllegalStateException e = assertThrows(IllegalStateException.class, m::enter);
            assertTrue(e.getMessage().contains("mutator 0 is IN_JIT: Java may enter JIT code again only from foreign code"
                    + " that JIT code reached through an exit"), e.getMessage());
            assertThrows(IllegalStateException.class, m::close, "detaching while in JIT code");
        }
        AtomicReference<Throwable> other = new AtomicReference<>();
        Thread t = Thread.ofPlatform().start(() -> {
            try {
                m.enter();
            } catch (Throwable e) {
                other.set(e);
            }
        });
        try {
            t.join();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
        assertTrue(other.get() instanceof IllegalStateException, "another thread cannot use this mutator");
        m.close();
    }

    @Test
    void aFailingActionStillReleasesTheWorld() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        assertThrows(StackWalkException.class, () -> c.stopTheWorld(null, 0, world -> {
            throw new StackWalkException("broken");
        }));
        Mutator m = c.attach();
        try (var scope = m.enter()) {
            assertEquals(0, m.context().get(ValueLayout.JAVA_LONG, Mutator.POLL_WORD), "poll words cleared");
        }
        m.close();
    }

    /** Runs {@code body} on a new thread and returns what it threw, or null; rethrows nothing itself. */
    private static Throwable onAnotherThread(ThrowingRunnable body) throws InterruptedException {
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread t = Thread.ofPlatform().start(() -> {
            try {
                body.run();
            } catch (Throwable e) {
                thrown.set(e);
            }
        });
        t.join();
        return thrown.get();
    }

    interface ThrowingRunnable {
        void run() throws Throwable;
    }

    @Test
    @Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aPollFromOutsideJitCodeIsRefusedAndLeavesNothingStuck() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        c.stopTimeout(java.time.Duration.ofSeconds(5));
        Mutator m = c.attach();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> c.poll(m.context(), 0x1000));
        assertEquals("mutator 0 polls while OUTSIDE: only a thread running JIT code may", e.getMessage());
        List<Throwable> reported = new ArrayList<>();
        try {
            c.pollUpcall(reported::add).invokeExact(m.context(), MemorySegment.ofAddress(0x1000));
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
        assertEquals(1, reported.size(), "the upcall reports instead of throwing");
        // Not wedged: a stop still completes, counting the mutator as outside.
        AtomicLong outside = new AtomicLong(-1);
        c.stopTheWorld(null, 0, world -> outside.set(world.outside()));
        assertEquals(1, outside.get());
        m.close();
    }

    @Test
    void aScopeClosesOnceOnItsOwnThreadAndInnermostFirst() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        Mutator m = c.attach();
        Mutator.JitScope scope = m.enter();
        Throwable fromOther = onAnotherThread(scope::close);
        assertTrue(fromOther instanceof IllegalStateException && fromOther.getMessage().contains("belongs to"),
                String.valueOf(fromOther));
        scope.close();
        IllegalStateException twice = assertThrows(IllegalStateException.class, scope::close);
        assertEquals("mutator 0: this JIT scope is closed already", twice.getMessage());
        // Still usable: enter and leave again, then detach.
        try (var again = m.enter()) {
            assertThrows(IllegalStateException.class, () -> c.returnFromExit(m.context()), "no exit to return from");
            assertThrows(IllegalStateException.class, () -> c.leaveToNative(m.context()), "its entry came from Java");
            c.exit(m.context(), 0x2000);
            assertThrows(IllegalStateException.class, again::close, "an exit out of the run has not returned");
            assertThrows(IllegalStateException.class, () -> c.exit(m.context(), 0x2000), "already in native code");
            c.returnFromExit(m.context());
        }
        m.close();
    }

    @Test
    @Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)  // without the refusal, the stop waits for itself
    void aStopFromInsideAWorldActionOrFromRunningJitCodeIsRefused() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        AtomicReference<Throwable> nested = new AtomicReference<>();
        c.stopTheWorld(null, 0, world -> nested.set(onAnotherThreadOrSame(() -> c.stopTheWorld(null, 0, w -> { }))));
        assertTrue(nested.get() instanceof IllegalStateException
                && nested.get().getMessage().startsWith("a stop was requested from inside a WorldAction"), String.valueOf(nested.get()));
        Mutator m = c.attach();
        try (var scope = m.enter()) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> c.stopTheWorld(null, 0, w -> { }));
            assertTrue(e.getMessage().startsWith("mutator 0 is running JIT code and asks for a stop without its slot"),
                    e.getMessage());
        }
        m.close();
    }

    /** Runs {@code body} on the calling thread and returns what it threw, or null. */
    private static Throwable onAnotherThreadOrSame(ThrowingRunnable body) {
        try {
            body.run();
            return null;
        } catch (Throwable t) {
            return t;
        }
    }

    @Test
    @Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)  // without the timeout, the stop waits forever
    void aStopThatWaitsTooLongFailsNamingTheMutatorsStillRunning() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        c.stopTimeout(java.time.Duration.ofMillis(200));
        CountDownLatch inJit = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        // A mutator in "JIT code" that never polls (a loop without a poll site).
        Thread stuck = Thread.ofPlatform().name("never-polls").start(() -> {
            try (Mutator m = c.attach(); var scope = m.enter()) {
                inJit.countDown();
                release.await();
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        assertTrue(inJit.await(10, TimeUnit.SECONDS));
        AtomicBoolean ran = new AtomicBoolean();
        StopTimeoutException e = assertThrows(StopTimeoutException.class, () -> c.stopTheWorld(null, 0, w -> ran.set(true)));
        assertEquals("the stop waited 200 ms and these mutators did not reach a poll: mutator 0 (never-polls) IN_JIT",
                e.getMessage());
        assertFalse(ran.get(), "no action runs after a timeout");
        release.countDown();
        stuck.join();
        if (failure.get() != null) {
            throw new AssertionError("the mutator thread failed", failure.get());
        }
        c.stopTheWorld(null, 0, w -> ran.set(true));
        assertTrue(ran.get(), "the coordinator works on after a timeout");
    }
}
