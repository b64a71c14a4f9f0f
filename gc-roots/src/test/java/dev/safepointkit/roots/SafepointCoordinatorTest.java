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
        final AtomicBoolean interruptedAfterPoll = new AtomicBoolean();

        Spinner(SafepointCoordinator c, MemorySegment stack) {
            this(c, stack, 0);
        }

        /** A spinner that, once it sees a stop requested, spins {@code lateMillis} more before it polls. */
        Spinner(SafepointCoordinator c, MemorySegment stack, long lateMillis) {
            // Whatever fails on this thread, attaching and detaching included, goes to failure,
            // which the test rethrows after joining it.
            thread = Thread.ofPlatform().start(() -> {
                try (Mutator m = c.attach()) {
                    mutator = m;
                    // A fake stack: the entry slot above the poll slot, as compiled code records them
                    // (the entry function stores it first thing after the entry).
                    slot = stack.address() + 64;
                    try (var scope = m.enter()) {
                        m.context().set(ValueLayout.JAVA_LONG, Mutator.ENTRY_SLOT, stack.address() + 256);
                        inJit.countDown();
                        while (!quit.get()) {
                            iterations.incrementAndGet();
                            if ((long) ValueLayout.JAVA_LONG.varHandle().getOpaque(m.context(), Mutator.POLL_WORD) != 0) {
                                if (lateMillis > 0) {
                                    Thread.sleep(lateMillis);
                                }
                                c.poll(m.context(), slot);
                                if (Thread.currentThread().isInterrupted()) {
                                    interruptedAfterPoll.set(true);
                                }
                            }
                        }
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
        }

        /**
         * Waits until this spinner runs JIT code again after a stop (or dies, which its failure
         * then says): fails after 10 s, when its release was lost.
         */
        void awaitResumed() {
            long seen = iterations.get();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (iterations.get() == seen && thread.isAlive()) {
                if (System.nanoTime() - deadline > 0) {
                    throw new AssertionError("a parked spinner did not run again within 10 s of the stop's end: its release was lost");
                }
                Thread.onSpinWait();
            }
        }

        /** Waits until this spinner runs JIT code: fails after 10 s with what its thread threw, if anything. */
        void awaitInJit() throws InterruptedException {
            if (!inJit.await(10, TimeUnit.SECONDS)) {
                rethrowFailure();
                throw new AssertionError("a spinner did not reach JIT code within 10 s");
            }
        }

        /** Fails with what this spinner's thread threw, if it threw anything. */
        void rethrowFailure() {
            if (failure.get() != null) {
                throw new AssertionError("a spinner thread failed", failure.get());
            }
        }
    }

    /**
     * A stop timeout far above any stop's time to safepoint here, yet short: a stop whose wait
     * missed the last park goes on only when it runs out, which {@link #assertWokenByThePark} tells.
     */
    private static final java.time.Duration SHORT_STOP_TIMEOUT = java.time.Duration.ofSeconds(5);

    /** Fails when {@code world}'s stop went on only at its timeout, not when its last mutator parked. */
    private static void assertWokenByThePark(StoppedWorld world) {
        long waited = world.stoppedNanos() - world.requestedNanos();
        assertTrue(waited < SHORT_STOP_TIMEOUT.toNanos(), "the stop waited " + waited / 1_000_000 + " ms, its whole timeout:"
                + " the last park did not wake it");
    }

    @Test
    void aStopTimeoutMustBePositive() {
        SafepointCoordinator c = new SafepointCoordinator(0);
        assertEquals("stop timeout PT0S", assertThrows(IllegalArgumentException.class,
                () -> c.stopTimeout(java.time.Duration.ZERO)).getMessage());
        assertEquals("stop timeout PT-0.001S", assertThrows(IllegalArgumentException.class,
                () -> c.stopTimeout(java.time.Duration.ofMillis(-1))).getMessage());
        c.stopTimeout(java.time.Duration.ofNanos(1));
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)  // a lost wake-up fails, not hangs
    void aStoppedWorldHandsOutEachParkedMutatorsContextBlockAndNoOther() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(16);
        c.stopTimeout(SHORT_STOP_TIMEOUT);
        try (Arena arena = Arena.ofShared()) {
            List<Spinner> spinners = List.of(new Spinner(c, arena.allocate(512, 16)), new Spinner(c, arena.allocate(512, 16)));
            for (Spinner s : spinners) {
                s.awaitInJit();
            }
            c.stopTheWorld(null, 0, world -> {
                assertEquals(2, world.parked().size());
                List<Long> blocks = new ArrayList<>();
                for (int i = 0; i < 2; i++) {
                    MemorySegment context = world.context(i);
                    // Each its own mutator's block, in the order of parked().
                    assertEquals(world.parked().get(i).context().address(), context.address(), "mutator " + i);
                    assertEquals(world.parked().get(i).context().byteSize(), context.byteSize());
                    blocks.add(context.address());
                }
                assertEquals(java.util.Set.of(spinners.get(0).mutator.context().address(),
                        spinners.get(1).mutator.context().address()), java.util.Set.copyOf(blocks), "both spinners' blocks");
                assertThrows(IndexOutOfBoundsException.class, () -> world.context(2));
                assertThrows(IndexOutOfBoundsException.class, () -> world.context(-1));
            });
            for (Spinner s : spinners) {
                s.awaitResumed();
                s.quit.set(true);
                s.thread.join();
                s.rethrowFailure();
            }
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)  // a lost wake-up fails, not hangs
    void anInterruptedParkedMutatorStaysParkedUntilTheStopEndsAndKeepsItsInterrupt() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(16);
        c.stopTimeout(SHORT_STOP_TIMEOUT);
        try (Arena arena = Arena.ofShared()) {
            Spinner s = new Spinner(c, arena.allocate(512, 16));
            s.awaitInJit();
            c.stopTheWorld(null, 0, world -> {
                assertWokenByThePark(world);
                assertEquals(1, world.parked().size());
                long before = s.iterations.get();
                s.thread.interrupt();
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
                assertEquals(before, s.iterations.get(), "an interrupt let a parked mutator run during the stop");
            });
            s.awaitResumed();
            s.quit.set(true);
            s.thread.join();
            s.rethrowFailure();
            assertTrue(s.interruptedAfterPoll.get(), "the interrupt was lost");
        }
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)  // a lost wake-up fails, not hangs
    void everyMutatorInJitCodeIsParkedAtItsPollWhileTheActionRuns() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(16);
        c.stopTimeout(SHORT_STOP_TIMEOUT);
        try (Arena arena = Arena.ofShared()) {
            List<Spinner> spinners = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                spinners.add(new Spinner(c, arena.allocate(512, 16)));
            }
            for (Spinner s : spinners) {
                s.awaitInJit();
            }
            for (int stop = 0; stop < 50; stop++) {
                c.stopTheWorld(null, 0, world -> {
                    assertWokenByThePark(world);
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
                s.awaitResumed();
                s.quit.set(true);
                s.thread.join();
                s.rethrowFailure();
            }
            assertEquals(0, c.mutatorCount());
        }
    }

    @Test
    @Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)  // an entry never let in fails, not hangs
    void aMutatorOutsideJitCodeCountsAsStoppedAndCannotEnterUntilTheStopEnds() throws Exception {
        // No stop timeout: no mutator runs JIT code, so the stop never waits for one.
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
        Mutator m = c.attach();
        assertThrows(StackWalkException.class, () -> c.stopTheWorld(null, 0, world -> {
            assertEquals(1, m.context().get(ValueLayout.JAVA_LONG, Mutator.POLL_WORD), "set during the stop");
            throw new StackWalkException("broken");
        }));
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
        c.stopTheWorld(null, 0, world -> nested.set(thrownBy(() -> c.stopTheWorld(null, 0, w -> { }))));
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
    private static Throwable thrownBy(ThrowingRunnable body) {
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
        assertEquals("the stop waited 200 ms and these mutators did not reach a poll: mutator 0 (never-polls)",
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

    @Test
    @Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)  // without the refusal, the action waits for itself
    void aWorldActionThatWouldWaitForItsOwnStopIsRefused() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        Mutator m = c.attach();
        List<String> refused = new ArrayList<>();
        c.stopTheWorld(null, 0, world -> {
            for (ThrowingRunnable call : List.<ThrowingRunnable>of(m::close, m::enter)) {
                Throwable t = thrownBy(call);
                refused.add(t == null ? "accepted" : t.getMessage());
            }
        });
        assertEquals(List.of("called from inside a WorldAction: it would wait for its own stop to end",
                "called from inside a WorldAction: it would wait for its own stop to end"), refused);
        m.close();
    }

    /** A fake stack for a thread's slots: an exit or poll slot at +64, an entry slot at +256. */
    private static MemorySegment fakeStack(Arena arena) {
        return arena.allocate(512, 16);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aStopInProgressGoesOnAsSoonAsTheThreadItWaitsForExits() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        c.stopTimeout(java.time.Duration.ofSeconds(20));
        try (Arena arena = Arena.ofShared()) {
            MemorySegment stack = fakeStack(arena);
            CountDownLatch inJit = new CountDownLatch(1);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread t = Thread.ofPlatform().start(() -> {
                try (Mutator m = c.attach(); var scope = m.enter()) {
                    m.context().set(ValueLayout.JAVA_LONG, Mutator.ENTRY_SLOT, stack.address() + 256);
                    inJit.countDown();
                    // "JIT code" that never polls, but leaves through an exit once a stop is requested.
                    while ((long) ValueLayout.JAVA_LONG.varHandle().getOpaque(m.context(), Mutator.POLL_WORD) == 0) {
                        Thread.onSpinWait();
                    }
                    c.exit(m.context(), stack.address() + 64);
                    c.returnFromExit(m.context());
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            assertTrue(inJit.await(10, TimeUnit.SECONDS));
            long start = System.nanoTime();
            AtomicReference<String> seen = new AtomicReference<>();
            c.stopTheWorld(null, 0, world -> seen.set(world.parked().size() + " stopped, runs "
                    + world.stacks().getFirst().runs().size() + ", outside " + world.outside()));
            long millis = (System.nanoTime() - start) / 1_000_000;
            t.join();
            if (failure.get() != null) {
                throw new AssertionError("the mutator thread failed", failure.get());
            }
            assertEquals("1 stopped, runs 1, outside 0", seen.get());
            assertTrue(millis < 10_000, "the stop went on when the thread exited, not at its 20 s timeout: " + millis + " ms");
        }
    }

    @Test
    void aStopsStacksAreNotWalkedAfterItsActionReturns() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        JitStackWalker walker = new JitStackWalker(new dev.safepointkit.registry.SafepointRegistry());
        try (Arena arena = Arena.ofConfined(); Mutator m = c.attach(); var scope = m.enter()) {
            MemorySegment stack = fakeStack(arena);
            exitIntoNative(c, m, stack);   // in native code: its JIT run is walkable in a stop
            AtomicReference<StoppedWorld> kept = new AtomicReference<>();
            AtomicReference<String> during = new AtomicReference<>();
            c.stopTheWorld(null, 0, world -> {
                kept.set(world);
                // During the action the walk is allowed and gets as far as the frame (whose return
                // address, 0 in the fake stack, no registered object knows).
                StackWalkException e = assertThrows(StackWalkException.class, () -> world.validate(walker));
                during.set(e.getMessage());
            });
            assertTrue(during.get().contains("0x0"), during.get());
            StoppedWorld world = kept.get();
            ThreadStack captured = world.stacks().getFirst();
            IllegalStateException validate = assertThrows(IllegalStateException.class, () -> world.validate(walker));
            IllegalStateException walkAll = assertThrows(IllegalStateException.class,
                    () -> world.walkAll(walker, (batch, s) -> { }));
            IllegalStateException walk = assertThrows(IllegalStateException.class,
                    () -> walker.walk(captured, (batch, s) -> { }));
            assertEquals("this stop has ended: its mutators run again, so its stacks are walked only during its action",
                    validate.getMessage());
            assertEquals(validate.getMessage(), walkAll.getMessage());
            assertEquals("the stack from 0x" + Long.toHexString(stack.address() + 64) + " belongs to a stop that has"
                    + " ended: its thread runs again, so it is walked only during the stop's action", walk.getMessage());
            c.returnFromExit(m.context());
        }
    }

    @Test
    void aStopsStacksAreNotWrittenAfterItsActionReturns() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        try (Arena arena = Arena.ofConfined(); Mutator m = c.attach(); var scope = m.enter()) {
            MemorySegment stack = fakeStack(arena);
            exitIntoNative(c, m, stack);
            AtomicReference<ThreadStack> kept = new AtomicReference<>();
            c.stopTheWorld(null, 0, world -> kept.set(world.stacks().getFirst()));
            // What a relocator kept past the action would write into a frame its thread runs again.
            long slot = stack.address() + 80;
            stack.set(ValueLayout.JAVA_LONG, 80, 0x1234);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> kept.get().write(slot, 0x5678));
            assertEquals("mutator 0 (" + Thread.currentThread().getName() + "): refused a write to its stack at 0x"
                    + Long.toHexString(slot) + ": the stop that captured it has ended and the thread runs again", e.getMessage());
            assertEquals(0x1234, stack.get(ValueLayout.JAVA_LONG, 80), "the slot is untouched");
            c.returnFromExit(m.context());
        }
    }

    @Test
    @Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aStopsStacksAreWalkedOnlyOnTheThreadThatRunsItsAction() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        JitStackWalker walker = new JitStackWalker(new dev.safepointkit.registry.SafepointRegistry());
        try (Arena arena = Arena.ofShared(); Mutator m = c.attach(); var scope = m.enter()) {
            MemorySegment stack = fakeStack(arena);
            exitIntoNative(c, m, stack);
            List<Throwable> thrown = new ArrayList<>();
            c.stopTheWorld(null, 0, world -> {
                // Another thread's walk: the action's return would not wait for it to finish.
                try {
                    thrown.add(onAnotherThread(() -> world.validate(walker)));
                    thrown.add(onAnotherThread(() -> world.walkAll(walker, (batch, s) -> { })));
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            });
            assertEquals(2, thrown.size());
            for (Throwable t : thrown) {
                assertTrue(t instanceof IllegalStateException && t.getMessage().endsWith(" walks a stop whose action runs on "
                        + Thread.currentThread() + ": only that thread may, since the mutators run again as soon as the"
                        + " action returns"), String.valueOf(t));
            }
            c.returnFromExit(m.context());
        }
    }

    @Test
    void aJavaScopeCannotCloseWhileAnInnerEntryIsOpen() {
        SafepointCoordinator c = new SafepointCoordinator(0);
        Mutator m = c.attach();
        Mutator.JitScope outer = m.enter();
        m.context().set(ValueLayout.JAVA_LONG, Mutator.ENTRY_SLOT, 0x9000);
        c.exit(m.context(), 0x8000);
        Mutator.JitScope inner = m.enter();
        IllegalStateException e = assertThrows(IllegalStateException.class, outer::close);
        assertEquals("mutator 0: this scope is not the innermost entry into JIT code; an inner entry is still open", e.getMessage());
        c.exit(m.context(), 0x7000);
        IllegalStateException slot = assertThrows(IllegalStateException.class, () -> c.enterFromNative(m.context(), 0x7008));
        assertTrue(slot.getMessage().contains("is not below its innermost exit slot 0x7000"), slot.getMessage());
        c.enterFromNative(m.context(), 0x6000);
        e = assertThrows(IllegalStateException.class, inner::close, "the innermost entry came from native code");
        assertTrue(e.getMessage().contains("not the innermost entry"), e.getMessage());
        c.leaveToNative(m.context());
        c.returnFromExit(m.context());
        inner.close();
        c.returnFromExit(m.context());
        outer.close();
        m.close();
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCallbackFromNativeCodeWaitsForTheStopToEnd() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment stack = fakeStack(arena);
            CountDownLatch inNative = new CountDownLatch(1);
            CountDownLatch callBack = new CountDownLatch(1);
            AtomicBoolean entered = new AtomicBoolean();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread t = Thread.ofPlatform().start(() -> {
                try (Mutator m = c.attach(); var scope = m.enter()) {
                    exitIntoNative(c, m, stack);
                    inNative.countDown();
                    callBack.await();
                    c.enterFromNative(m.context(), stack.address() + 32);  // C calls a JIT callback now
                    entered.set(true);
                    c.leaveToNative(m.context());
                    c.returnFromExit(m.context());
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            // A second mutator in JIT code keeps the stop waiting: the callback comes in that window,
            // while the coordinator's lock is free, not only while the action holds it.
            String seen = stopWhileALateMutatorKeepsItWaiting(c, arena, inNative, callBack, t, failure, "the mutator thread",
                    world -> "entered during the stop: " + entered.get());
            assertEquals("entered during the stop: false", seen);
            assertTrue(entered.get());
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aTimedOutStopResumesTheParkedAndClearsEveryPollWord() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        c.stopTimeout(java.time.Duration.ofMillis(300));
        try (Arena arena = Arena.ofShared()) {
            Spinner polite = new Spinner(c, arena.allocate(512, 16));
            CountDownLatch stuckInJit = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            AtomicReference<Mutator> stuckMutator = new AtomicReference<>();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread stuck = Thread.ofPlatform().start(() -> {
                try (Mutator m = c.attach(); var scope = m.enter()) {
                    stuckMutator.set(m);
                    stuckInJit.countDown();
                    release.await();
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            assertTrue(polite.inJit.await(10, TimeUnit.SECONDS));
            assertTrue(stuckInJit.await(10, TimeUnit.SECONDS));
            assertThrows(StopTimeoutException.class, () -> c.stopTheWorld(null, 0, w -> { }));
            long seen = polite.iterations.get();
            while (polite.iterations.get() == seen && polite.thread.isAlive()) {
                Thread.onSpinWait();  // the parked spinner runs again
            }
            assertEquals(0, polite.mutator.context().get(ValueLayout.JAVA_LONG, Mutator.POLL_WORD));
            assertEquals(0, stuckMutator.get().context().get(ValueLayout.JAVA_LONG, Mutator.POLL_WORD));
            assertEquals(1, c.stops());
            release.countDown();
            polite.quit.set(true);
            polite.thread.join();
            stuck.join();
            polite.rethrowFailure();
            if (failure.get() != null) {
                throw new AssertionError("the stuck thread failed", failure.get());
            }
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aMutatorThatParksAfterTheStopGaveUpSpinningStillEndsTheWait() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        // A timeout the stop must not reach: only the park's signal may end the wait.
        c.stopTimeout(java.time.Duration.ofSeconds(20));
        try (Arena arena = Arena.ofShared()) {
            // Polls 200 ms after it sees the poll word, long after the stop has stopped spinning
            // (SPIN_NANOS) and blocked on the lock's condition.
            Spinner late = new Spinner(c, arena.allocate(512, 16), 200);
            assertTrue(late.inJit.await(10, TimeUnit.SECONDS));
            assertTrue(java.time.Duration.ofMillis(200).toNanos() > 100 * SafepointCoordinator.SPIN_NANOS);
            AtomicReference<String> seen = new AtomicReference<>();
            long start = System.nanoTime();
            c.stopTheWorld(null, 0, world -> seen.set(world.parked().size() + " parked, at slot "
                    + (world.stacks().getFirst().returnAddressSlot() == late.slot)));
            long millis = (System.nanoTime() - start) / 1_000_000;
            late.quit.set(true);
            late.thread.join();
            late.rethrowFailure();
            assertEquals("1 parked, at slot true", seen.get());
            // A wait that missed the park ends only when its 20 s run out (and then finds it parked).
            assertTrue(millis < 10_000, "the park ended the wait, not the stop's 20 s timeout: " + millis + " ms");
        }
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aMutatorReleasedButNotYetRunCountsAsParkedInAStopThatFollowsAtOnce() throws Exception {
        // Two collectors stop the world back to back, so a stop often begins between one release
        // (the releasing stop unparks the thread only after its unlock) and the mutator's next
        // step: the stop finds it still parked at its poll and need not wait for the scheduler to
        // run it. With this one mutator such a stop waits for nobody, so it holds the lock from its
        // start to its release and the mutator, when it runs, never finds a stop in progress: the
        // poll's stay-parked branch is the next test's.
        SafepointCoordinator c = new SafepointCoordinator(0);
        c.stopTimeout(java.time.Duration.ofSeconds(20));
        try (Arena arena = Arena.ofShared()) {
            Spinner s = new Spinner(c, arena.allocate(512, 16));
            assertTrue(s.inJit.await(10, TimeUnit.SECONDS));
            int perCollector = 2_000;
            // Whatever a collector thread asserts reaches this thread through these references.
            List<AtomicReference<Throwable>> failures = List.of(new AtomicReference<>(), new AtomicReference<>());
            List<Thread> collectors = new ArrayList<>();
            for (AtomicReference<Throwable> failure : failures) {
                collectors.add(Thread.ofPlatform().start(() -> {
                    try {
                        for (int k = 0; k < perCollector; k++) {
                            c.stopTheWorld(null, 0, world -> {
                                assertEquals(1, world.parked().size(), "the mutator counts as parked");
                                assertEquals(s.slot, world.stacks().getFirst().returnAddressSlot());
                                long before = s.iterations.get();
                                for (int spin = 0; spin < 200; spin++) {
                                    Thread.onSpinWait();
                                }
                                assertEquals(before, s.iterations.get(), "a parked mutator ran during a stop");
                            });
                        }
                    } catch (Throwable t) {
                        failure.set(t);
                    }
                }));
            }
            for (Thread t : collectors) {
                t.join();
            }
            long seen = s.iterations.get();
            while (s.iterations.get() == seen && s.thread.isAlive()) {
                Thread.onSpinWait();  // resumed after the last stop (or died, which its failure says)
            }
            s.quit.set(true);
            s.thread.join();
            s.rethrowFailure();
            for (AtomicReference<Throwable> failure : failures) {
                if (failure.get() != null) {
                    throw new AssertionError("a collector thread failed", failure.get());
                }
            }
            assertEquals(2L * perCollector, c.stops());
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aStopInProgressGoesOnAsSoonAsTheThreadItWaitsForLeavesJitCode() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        c.stopTimeout(java.time.Duration.ofSeconds(20));
        CountDownLatch inJit = new CountDownLatch(1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread t = Thread.ofPlatform().start(() -> {
            try (Mutator m = c.attach()) {
                try (var scope = m.enter()) {
                    inJit.countDown();
                    // "JIT code" that never polls, but returns to Java once a stop is requested.
                    while ((long) ValueLayout.JAVA_LONG.varHandle().getOpaque(m.context(), Mutator.POLL_WORD) == 0) {
                        Thread.onSpinWait();
                    }
                }
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        assertTrue(inJit.await(10, TimeUnit.SECONDS));
        long start = System.nanoTime();
        AtomicReference<String> seen = new AtomicReference<>();
        c.stopTheWorld(null, 0, world -> seen.set(world.parked().size() + " stopped, outside " + world.outside()));
        long millis = (System.nanoTime() - start) / 1_000_000;
        t.join();
        if (failure.get() != null) {
            throw new AssertionError("the mutator thread failed", failure.get());
        }
        assertEquals("0 stopped, outside 1", seen.get());
        // A leave that does not wake the stop leaves it waiting until its 20 s run out.
        assertTrue(millis < 10_000, "the stop went on when the thread left JIT code, not at its 20 s timeout: " + millis + " ms");
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aTimedOutStopNamesOnlyTheMutatorsStillRunningNotTheParkedOnes() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        c.stopTimeout(java.time.Duration.ofMillis(300));
        try (Arena arena = Arena.ofShared()) {
            Spinner polite = new Spinner(c, arena.allocate(512, 16));
            assertTrue(polite.inJit.await(10, TimeUnit.SECONDS));
            CountDownLatch stuckInJit = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            AtomicReference<Mutator> stuckMutator = new AtomicReference<>();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread stuck = Thread.ofPlatform().name("never-polls").start(() -> {
                try (Mutator m = c.attach(); var scope = m.enter()) {
                    stuckMutator.set(m);
                    stuckInJit.countDown();
                    release.await();
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            assertTrue(stuckInJit.await(10, TimeUnit.SECONDS));
            StopTimeoutException e = assertThrows(StopTimeoutException.class, () -> c.stopTheWorld(null, 0, w -> { }));
            release.countDown();
            polite.quit.set(true);
            polite.thread.join();
            stuck.join();
            polite.rethrowFailure();
            if (failure.get() != null) {
                throw new AssertionError("the stuck thread failed", failure.get());
            }
            assertEquals("the stop waited 300 ms and these mutators did not reach a poll: mutator "
                    + stuckMutator.get().index() + " (never-polls)", e.getMessage());
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aJavaEntryWaitsForTheStopToEndWhileTheStopStillWaitsForItsMutators() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        try (Arena arena = Arena.ofShared()) {
            CountDownLatch attached = new CountDownLatch(1);
            CountDownLatch enterNow = new CountDownLatch(1);
            AtomicBoolean entered = new AtomicBoolean();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread t = Thread.ofPlatform().start(() -> {
                try (Mutator m = c.attach()) {
                    attached.countDown();
                    enterNow.await();
                    try (var scope = m.enter()) {
                        entered.set(true);
                    }
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            // A mutator in JIT code that polls late keeps the stop waiting, its lock free: the
            // entry comes in that window, not only while the action holds the lock.
            String seen = stopWhileALateMutatorKeepsItWaiting(c, arena, attached, enterNow, t, failure, "the entering thread",
                    world -> "entered during the stop: " + entered.get());
            assertEquals("entered during the stop: false", seen);
            assertTrue(entered.get());
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aReturnFromAnExitWaitsForTheStopToEndWhileTheStopStillWaitsForItsMutators() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment stack = fakeStack(arena);
            CountDownLatch inNative = new CountDownLatch(1);
            CountDownLatch returnNow = new CountDownLatch(1);
            AtomicBoolean returned = new AtomicBoolean();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread t = Thread.ofPlatform().start(() -> {
                try (Mutator m = c.attach(); var scope = m.enter()) {
                    exitIntoNative(c, m, stack);
                    inNative.countDown();
                    returnNow.await();
                    c.returnFromExit(m.context());  // the native call is done: back into the JIT run
                    returned.set(true);
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            // A mutator in JIT code that polls late keeps the stop waiting, its lock free: the
            // return comes in that window, not only while the action holds the lock (where a
            // return that does not wait would still block on the lock).
            String seen = stopWhileALateMutatorKeepsItWaiting(c, arena, inNative, returnNow, t, failure, "the returning thread",
                    world -> "returned during the stop: " + returned.get()
                            + ", stacks: " + world.stacks().size());
            assertEquals("returned during the stop: false, stacks: 2", seen);
            assertTrue(returned.get());
        }
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aMutatorReleasedStaysParkedForAStopThatBeginsBeforeItRuns() throws Exception {
        // The stay-parked branch of the poll: a mutator released by one stop takes the lock only
        // after the next stop has begun, and finds it in progress. The next stop must let go of the
        // lock for that, so it must wait for someone: a second mutator, back in JIT code before the
        // stop begins, that leaves through an exit only a while after it sees its poll word. The
        // collector pauses a random while between stops, so that many stops begin after that
        // mutator is back and before the released one has the lock. This is a race, not a schedule:
        // on a loaded two-core machine 30 to 73 of the 2,000 stops took the branch (counted there,
        // three runs; the test above took it in none), so a run all but surely takes it, but no
        // single run is certain to.
        // A poll that marks itself running and waits on fails: the stop then waits for it until
        // its timeout. A poll that leaves the branch and polls again is harmless and passes: it
        // parks again at the same slot before the stop can go on.
        SafepointCoordinator c = new SafepointCoordinator(0);
        c.stopTimeout(SHORT_STOP_TIMEOUT);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment exitingStack = fakeStack(arena);
            AtomicBoolean quit = new AtomicBoolean();
            CountDownLatch inJit = new CountDownLatch(1);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread exiting = Thread.ofPlatform().start(() -> {
                try (Mutator m = c.attach(); var scope = m.enter()) {
                    m.context().set(ValueLayout.JAVA_LONG, Mutator.ENTRY_SLOT, exitingStack.address() + 256);
                    inJit.countDown();
                    while (!quit.get()) {
                        if ((long) ValueLayout.JAVA_LONG.varHandle().getOpaque(m.context(), Mutator.POLL_WORD) != 0) {
                            spinMicros(500);  // the stop waits meanwhile, its lock free
                            c.exit(m.context(), exitingStack.address() + 64);
                            c.returnFromExit(m.context());  // back in JIT code once the stop ends
                        }
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            assertTrue(inJit.await(10, TimeUnit.SECONDS));
            Spinner s = new Spinner(c, arena.allocate(512, 16));
            assertTrue(s.inJit.await(10, TimeUnit.SECONDS));
            java.util.Random random = new java.util.Random(1);
            for (int k = 0; k < 2_000; k++) {
                c.stopTheWorld(null, 0, world -> {
                    int at = world.parked().indexOf(s.mutator);
                    assertTrue(at >= 0, "the released mutator counts as parked");
                    assertEquals(s.slot, world.stacks().get(at).returnAddressSlot());
                    long before = s.iterations.get();
                    spinMicros(20);
                    assertEquals(before, s.iterations.get(), "a parked mutator ran during a stop");
                });
                spinMicros(random.nextInt(500));
            }
            s.awaitResumed();
            s.quit.set(true);
            quit.set(true);
            s.thread.join();
            exiting.join();
            s.rethrowFailure();
            if (failure.get() != null) {
                throw new AssertionError("the exiting mutator's thread failed", failure.get());
            }
            assertEquals(2_000, c.stops());
        }
    }

    /** Spins, without sleeping, for {@code micros} microseconds. */
    private static void spinMicros(long micros) {
        long until = System.nanoTime() + micros * 1_000;
        while (System.nanoTime() - until < 0) {
            Thread.onSpinWait();
        }
    }

    /**
     * Stops the world while a mutator in JIT code that polls late keeps the stop waiting with the
     * coordinator's lock free, and opens {@code go} as soon as the stop is requested, once
     * {@code ready} is open: so {@code subject}, waiting on {@code go}, acts in that window and not
     * only while the action holds the lock. Joins every thread and rethrows their failures
     * ({@code failure} is {@code subject}'s).
     *
     * @return what {@code look} said of the world during the stop
     */
    private static String stopWhileALateMutatorKeepsItWaiting(SafepointCoordinator c, Arena arena, CountDownLatch ready,
            CountDownLatch go, Thread subject, AtomicReference<Throwable> failure, String who,
            java.util.function.Function<StoppedWorld, String> look) throws Exception {
        Spinner late = new Spinner(c, arena.allocate(512, 16), 300);
        assertTrue(ready.await(10, TimeUnit.SECONDS));
        assertTrue(late.inJit.await(10, TimeUnit.SECONDS));
        Thread opener = Thread.ofPlatform().start(() -> {
            while ((long) ValueLayout.JAVA_LONG.varHandle().getOpaque(late.mutator.context(), Mutator.POLL_WORD) == 0) {
                Thread.onSpinWait();  // until the stop is requested
            }
            go.countDown();
        });
        AtomicReference<String> seen = new AtomicReference<>();
        c.stopTheWorld(null, 0, world -> seen.set(look.apply(world)));
        opener.join();
        subject.join();
        late.quit.set(true);
        late.thread.join();
        late.rethrowFailure();
        if (failure.get() != null) {
            throw new AssertionError(who + " failed", failure.get());
        }
        return seen.get();
    }


    @Test
    @Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)  // a stop left half-ended would hang the next one
    void aStopRefusesARunWhoseEntrySlotWasNeverRecordedNamingTheMutatorAndReleasesTheWorld() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        try (Arena arena = Arena.ofConfined(); Mutator m = c.attach()) {
            MemorySegment stack = fakeStack(arena);
            long slot = stack.address() + 64;
            AtomicBoolean ran = new AtomicBoolean();
            try (var scope = m.enter()) {
                // An entry function that did not store its slot: a slow path's stop has no run to bound.
                StackWalkException parked = assertThrows(StackWalkException.class,
                        () -> c.stopTheWorld(m, slot, w -> ran.set(true)));
                assertEquals("mutator 0: its JIT entry slot 0x0 is not above its poll slot 0x" + Long.toHexString(slot)
                        + " (the entry function must store llvm.addressofreturnaddress() at context offset 8)",
                        parked.getMessage());
                // The same for a run left through an exit, the thread in native code.
                c.exit(m.context(), slot);
                StackWalkException exited = assertThrows(StackWalkException.class,
                        () -> c.stopTheWorld(null, 0, w -> ran.set(true)));
                assertEquals("mutator 0: the run it left at exit slot 0x" + Long.toHexString(slot) + " has entry slot 0x0,"
                        + " not above it (the entry function must store llvm.addressofreturnaddress() at context offset 8)",
                        exited.getMessage());
                assertFalse(ran.get(), "no action runs over a stack that cannot be bounded");
                assertEquals(2, c.stops(), "both stops ended");
                assertEquals(0, m.context().get(ValueLayout.JAVA_LONG, Mutator.POLL_WORD), "poll word cleared");
                c.returnFromExit(m.context());   // not held back by a stop left in progress
            }
            c.stopTheWorld(null, 0, w -> ran.set(true));
            assertTrue(ran.get(), "the coordinator works on after the refusals");
        }
    }

    @Test
    @Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aStressModePollWhoseStopFailsThrowsItAndTheMutatorRunsOnWithItsPollWordStillSet() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        try (Arena arena = Arena.ofConfined(); Mutator m = c.attach()) {
            MemorySegment stack = fakeStack(arena);
            c.collectAtEveryPoll(world -> {
                throw new StackWalkException("the collector failed");
            });
            try (var scope = m.enter()) {
                m.context().set(ValueLayout.JAVA_LONG, Mutator.ENTRY_SLOT, stack.address() + 256);
                StackWalkException e = assertThrows(StackWalkException.class, () -> c.poll(m.context(), stack.address() + 64));
                assertEquals("the collector failed", e.getMessage());
                assertEquals(1, c.stops());
                assertEquals(1, m.context().get(ValueLayout.JAVA_LONG, Mutator.POLL_WORD), "stress mode is still on");
                c.collectAtEveryPoll(null);
                c.poll(m.context(), stack.address() + 64);   // running JIT code, not left parked
            }
        }
    }

    @Test
    void aMutatorOfAnotherCoordinatorOrAnUnknownContextIsRefusedNamingIt() throws Exception {
        SafepointCoordinator c = new SafepointCoordinator(0);
        SafepointCoordinator other = new SafepointCoordinator(0);
        try (Arena arena = Arena.ofConfined(); Mutator mine = c.attach(); Mutator theirs = other.attach()) {
            MemorySegment stack = fakeStack(arena);
            try (var scope = theirs.enter()) {
                theirs.context().set(ValueLayout.JAVA_LONG, Mutator.ENTRY_SLOT, stack.address() + 256);
                AtomicBoolean ran = new AtomicBoolean();
                IllegalStateException slowPath = assertThrows(IllegalStateException.class,
                        () -> c.stopTheWorld(theirs, stack.address() + 64, w -> ran.set(true)));
                assertEquals("mutator 0 is not attached to this coordinator", slowPath.getMessage());
                assertFalse(ran.get());
                IllegalStateException poll = assertThrows(IllegalStateException.class,
                        () -> c.poll(theirs.context(), stack.address() + 64));
                assertEquals("a call from an unknown context block 0x" + Long.toHexString(theirs.context().address()),
                        poll.getMessage());
                assertEquals(0, c.stops(), "no stop began");
                // Still running JIT code under its own coordinator, which stops it as usual.
                other.stopTheWorld(theirs, stack.address() + 64, w -> ran.set(w.parked().size() == 1));
                assertTrue(ran.get());
            }
            IllegalStateException zero = assertThrows(IllegalStateException.class, () -> c.enterFromNative(mine.context(), 0));
            assertTrue(zero.getMessage().startsWith("mutator 0 enters JIT code from native code at slot 0x0,"), zero.getMessage());
            try (var scope = mine.enter()) {
                IllegalStateException inJit = assertThrows(IllegalStateException.class,
                        () -> c.enterFromNative(mine.context(), stack.address() + 32));
                assertEquals("mutator 0 enters JIT code from native code while IN_JIT", inJit.getMessage());
            }
        }
    }

    /**
     * Has {@code m}, in JIT code on a run that {@code stack} stands for (entered at offset 256),
     * call out into native code through an exit at offset 64: its run is then walkable in a stop.
     */
    private static void exitIntoNative(SafepointCoordinator c, Mutator m, MemorySegment stack) {
        m.context().set(ValueLayout.JAVA_LONG, Mutator.ENTRY_SLOT, stack.address() + 256);
        c.exit(m.context(), stack.address() + 64);
    }

}
