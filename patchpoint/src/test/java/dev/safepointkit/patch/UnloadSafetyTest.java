package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.host.CallSite;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.roots.SafepointCoordinator;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * What still leads into code keeps it loaded, and a failed step leaves nothing stale behind: the
 * host's unload, the patcher's unload racing a redefine, a refused declare, a stop that has ended,
 * a retired object the host will not unload, a call site someone else changed.
 */
class UnloadSafetyTest {
    private static final FunctionDescriptor LONG_LONG = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);

    /** A listener that blocks the next objectLoaded (inside the host's lock) until released. */
    private static final class HostLockHolder implements JitEventListener {
        final AtomicBoolean armed = new AtomicBoolean();
        final CountDownLatch inside = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);

        @Override
        public void objectLoaded(LoadedObject object) {
            if (armed.getAndSet(false)) {
                inside.countDown();
                try {
                    release.await(20, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    private static void await(BooleanSupplier c, String what) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out: " + what);
            }
            Thread.sleep(1);
        }
    }

    @Test
    void nonForcedHostUnloadOfALiveBodyIsRefused() throws Throwable {
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, new SafepointCoordinator(0), t -> { })) {
            Stub g = patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
            PatchFixtures.load(host, "lazy_caller");
            assertEquals(41L, (long) host.downcall("f0", LONG_LONG).invokeExact(20L));
            JitObject v1 = host.objects().getLast();
            long body = g.body().orElseThrow();
            try {
                host.unload(v1, false);
            } catch (JitLoadException refused) {
                assertTrue(refused.getMessage().contains("'g'"), "names the function: " + refused.getMessage());
                assertTrue(host.objects().contains(v1));
                assertEquals(41L, (long) host.downcall("f0", LONG_LONG).invokeExact(20L), "still callable");
                // Through the patcher, which moves the stub and its sites first, it goes.
                assertTrue(patcher.unload(v1));
                assertFalse(host.objects().contains(v1));
                return;
            }
            throw new AssertionError("host.unload(g's live body, force=false) went through: the stub still leads to 0x"
                    + Long.toHexString(g.target()) + " (body 0x" + Long.toHexString(body) + "), now unmapped; loaded: "
                    + host.objects().contains(v1));
        }
    }

    /** A listener asked after the patcher that holds the host's lock in the next unloadRefusal. */
    private static final class RefusalWindow implements JitEventListener {
        final AtomicBoolean armed = new AtomicBoolean();
        final CountDownLatch inside = new CountDownLatch(1);
        volatile Thread redefiner;

        @Override
        public Optional<String> unloadRefusal(LoadedObject object) {
            if (armed.getAndSet(false)) {
                inside.countDown();
                // The patcher has answered already. Keep the window open until the redefiner
                // has finished (the race lost) or waits for the host's lock (the race closed).
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (System.nanoTime() < deadline) {
                    Thread r = redefiner;
                    if (r != null && (r.getState() == Thread.State.BLOCKED || r.getState() == Thread.State.TERMINATED)) {
                        break;
                    }
                    Thread.onSpinWait();
                }
            }
            return Optional.empty();
        }
    }

    @Test
    void aHostUnloadRacingARedefineIntoTheSameObjectLeavesNoStubIntoFreedCode() throws Throwable {
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, new SafepointCoordinator(0), t -> { })) {
            Stub g = patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
            PatchFixtures.load(host, "lazy_caller");
            assertEquals(41L, (long) host.downcall("f0", LONG_LONG).invokeExact(20L));
            JitObject v2 = PatchFixtures.load(host, "g_v2");   // loaded, not yet anyone's body
            RefusalWindow window = new RefusalWindow();
            host.addListener(window);
            window.armed.set(true);
            AtomicReference<Throwable> unloaded = new AtomicReference<>();
            Thread unloader = Thread.ofPlatform().start(() -> {
                try {
                    host.unload(v2, false);   // nothing leads into v2 yet: the patcher lets it go
                } catch (Throwable t) {
                    unloaded.set(t);
                }
            });
            assertTrue(window.inside.await(10, TimeUnit.SECONDS));
            AtomicReference<Throwable> redefined = new AtomicReference<>();
            Thread redefiner = Thread.ofPlatform().unstarted(() -> {
                try {
                    patcher.redefine("g", v2);
                } catch (Throwable t) {
                    redefined.set(t);
                }
            });
            window.redefiner = redefiner;
            redefiner.start();
            unloader.join();
            redefiner.join();
            assertEquals(null, unloaded.get(), "the unload was asked first and went through");
            assertFalse(host.objects().contains(v2));
            long v2g = v2.loaded().symbol("g").orElseThrow().address();
            assertNotEquals(v2g, g.target(), "g's stub leads to 0x" + Long.toHexString(v2g) + " in g_v2.o, which is "
                    + "unmapped (redefine result: " + redefined.get() + ")");
            assertTrue(redefined.get() instanceof PatchException, "the redefine into an unloaded object is refused: "
                    + redefined.get());
            assertTrue(redefined.get().getMessage().contains("g_v2"), redefined.get().getMessage());
        }
    }

    @Test
    void aRedefineRefusedAtItsWriteLeavesTheStubAndTheBodyAsTheyWere() throws Throwable {
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, new SafepointCoordinator(0), t -> { })) {
            Stub g = patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
            JitObject caller = PatchFixtures.load(host, "lazy_caller");
            assertEquals(41L, (long) host.downcall("f0", LONG_LONG).invokeExact(20L));
            JitObject v1 = host.objects().getLast();
            JitObject v2 = PatchFixtures.load(host, "g_v2");
            long before = g.target();
            CallSite aligned = host.symbol("g").orElseThrow().callSites().stream()
                    .filter(c -> c.objectKey() == caller.key() && c.isBranch() && c.address() % 4 == 0).findFirst().orElseThrow();
            HostLockHolder holder = new HostLockHolder();
            host.addListener(holder);
            holder.armed.set(true);
            AtomicReference<Throwable> loaded = new AtomicReference<>();
            Thread loader = Thread.ofPlatform().start(() -> {
                try {
                    PatchFixtures.load(host, "ptr_spin");
                } catch (Throwable t) {
                    loaded.set(t);
                }
            });
            assertTrue(holder.inside.await(10, TimeUnit.SECONDS));
            AtomicReference<Throwable> redefined = new AtomicReference<>();
            Thread redefiner = Thread.ofPlatform().start(() -> {
                try {
                    patcher.redefine("g", v2);
                } catch (Throwable t) {
                    redefined.set(t);
                }
            });
            // Planned; now waiting for the host's lock to write. Meanwhile one aligned site changes.
            await(() -> redefiner.getState() == Thread.State.BLOCKED, "redefine waits for the host to write");
            long gStatic = host.address("g_static").orElseThrow();
            host.codeAliases().writable(aligned.address(), 4).orElseThrow()
                    .set(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0, (int) (gStatic - (aligned.address() + 4)));
            holder.release.countDown();
            loader.join();
            redefiner.join();
            assertEquals(null, loaded.get());
            assertTrue(redefined.get() instanceof PatchException, "a changed site refuses the redefine: " + redefined.get());
            assertEquals(before, g.target(), "the stub moved although the redefine was refused");
            assertEquals(v1.loaded().symbol("g").orElseThrow().address(), g.body().orElseThrow(), "g's body is still v1's");
            assertEquals(List.of(), patcher.retired(), "v1 is still the body, not retired");
        }
    }

    @Test
    void aRetiredBodyIsNotUnloadedByTheHostBeforeAStopShowsNoStackRunsIt() throws Throwable {
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, new SafepointCoordinator(0), t -> { })) {
            patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
            PatchFixtures.load(host, "lazy_caller");
            assertEquals(41L, (long) host.downcall("f0", LONG_LONG).invokeExact(20L));
            JitObject v1 = host.objects().getLast();
            patcher.redefine("g", PatchFixtures.load(host, "g_v2"));
            assertEquals(List.of(v1), patcher.retired());
            JitLoadException refused = assertThrows(JitLoadException.class, () -> host.unload(v1, false),
                    "a thread may still run the retired body");
            assertTrue(refused.getMessage().contains("retired by the code patcher"), refused.getMessage());
            assertEquals(1, patcher.safepoint(), "the stop frees it");
            assertFalse(host.objects().contains(v1));
            // One the host unloads by force is dropped from tracking, not a failure of later stops.
            JitObject v2 = host.objects().stream().filter(o -> o.name().startsWith("g_v2")).findFirst().orElseThrow();
            patcher.redefine("g", PatchFixtures.load(host, "g_v1"));
            host.unload(v2, true);
            assertEquals(0, patcher.safepoint());
            assertEquals(List.of(), patcher.retired());
        }
    }

    @Test
    void closeFreesNoStubWhileItsNameCanStillBeLinked() throws Throwable {
        JitHost host = new JitHost();
        CodePatcher patcher = new CodePatcher(host);
        Stub g = patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
        JitObject caller = PatchFixtures.load(host, "lazy_caller");
        AtomicBoolean armed = new AtomicBoolean(true);
        AtomicReference<Thread> closer = new AtomicReference<>();
        AtomicReference<Throwable> failed = new AtomicReference<>();
        AtomicReference<String> seen = new AtomicReference<>();
        host.addListener(new JitEventListener() {
            @Override
            public void objectLoaded(LoadedObject o) {
                if (!armed.getAndSet(false)) {
                    return;
                }
                try {
                    // close() has marked the patcher closed and waits for the host's lock to undefine 'g'.
                    Thread c = Thread.ofPlatform().start(patcher::close);
                    closer.set(c);
                    await(() -> c.getState() == Thread.State.BLOCKED, "close waits for the host");
                    host.unload(caller, true);   // the last object that refers to g
                    JitObject again = PatchFixtures.load(host, "lazy_caller");   // 'g' is still defined: linked to the stub
                    seen.set("host g=" + host.address("g").map(Long::toHexString).orElse("none") + ", stub 0x"
                            + Long.toHexString(g.address()) + ", reloaded refers to g: " + again.referencedSymbols().contains("g"));
                } catch (Throwable t) {
                    failed.set(t);
                }
            }
        });
        PatchFixtures.load(host, "g_v2");
        closer.get().join();
        if (failed.get() != null) {
            throw failed.get();
        }
        try {
            // The reloaded caller still refers to g's stub: its memory must still be mapped.
            assertTrue(patcher.stubsStillMapped(), "the stubs were freed while a loaded object links to them: " + seen.get());
        } finally {
            host.close();
        }
    }

    @Test
    void aFailedDeclareLeavesNoStaleSlotForTheNextDeclare() throws Throwable {
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            JitObject v1 = PatchFixtures.load(host, "g_v1");   // defines h as a global: declaring h clashes
            long h = v1.loaded().symbol("h").orElseThrow().address();
            HostLockHolder holder = new HostLockHolder();
            host.addListener(holder);
            holder.armed.set(true);
            AtomicReference<Throwable> loadFailed = new AtomicReference<>();
            Thread loader = Thread.ofPlatform().start(() -> {
                try {
                    PatchFixtures.load(host, "ptr_spin");
                } catch (Throwable t) {
                    loadFailed.set(t);
                }
            });
            assertTrue(holder.inside.await(10, TimeUnit.SECONDS));
            AtomicReference<Throwable> declared = new AtomicReference<>();
            Thread declarer = Thread.ofPlatform().start(() -> {
                try {
                    patcher.declare("h", fn -> v1);
                } catch (Throwable t) {
                    declared.set(t);
                }
            });
            // The declarer holds the patcher's lock and waits for the host's to define 'h'.
            await(() -> declarer.getState() == Thread.State.BLOCKED, "declare waits for the host");
            AtomicReference<Throwable> compiled = new AtomicReference<>();
            Thread compiler = Thread.ofPlatform().start(() -> {
                try {
                    patcher.compile("h");
                } catch (Throwable t) {
                    compiled.set(t);
                }
            });
            await(() -> compiler.getState() == Thread.State.WAITING || compiler.getState() == Thread.State.TERMINATED,
                    "compile waits for the patcher's lock, or is refused");
            holder.release.countDown();
            loader.join();
            assertEquals(null, loadFailed.get(), "the load that held the host's lock");
            declarer.join();
            compiler.join();
            assertTrue(declared.get() instanceof JitLoadException, String.valueOf(declared.get()));
            Stub y = patcher.declare("y", fn -> {
                throw new AssertionError("never");
            });
            assertNotEquals(h, y.target(), "y's fresh stub leads to h's body (compile(\"h\") result: " + compiled.get()
                    + "); y.body=" + y.body());
            assertTrue(compiled.get() instanceof IllegalArgumentException, "'h' was never declared: " + compiled.get());
            assertTrue(patcher.stub("h").isEmpty());
        }
    }

    @Test
    void unloadWithoutACoordinatorRacingRedefineLeavesNoStubIntoFreedCode() throws Throwable {
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            Stub g = patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
            PatchFixtures.load(host, "lazy_caller");
            assertEquals(9L, (long) host.downcall("f1", LONG_LONG).invokeExact(4L));
            JitObject v1 = host.objects().getLast();
            HostLockHolder holder = new HostLockHolder();
            host.addListener(holder);
            holder.armed.set(true);
            AtomicReference<Throwable> loadFailed = new AtomicReference<>();
            Thread loader = Thread.ofPlatform().start(() -> {
                try {
                    PatchFixtures.load(host, "ptr_spin");
                } catch (Throwable t) {
                    loadFailed.set(t);
                }
            });
            assertTrue(holder.inside.await(10, TimeUnit.SECONDS));
            AtomicReference<Throwable> unloaded = new AtomicReference<>();
            Thread unloader = Thread.ofPlatform().start(() -> {
                try {
                    patcher.unload(v1);
                } catch (Throwable t) {
                    unloaded.set(t);
                }
            });
            await(() -> g.body().isEmpty() && unloader.getState() == Thread.State.BLOCKED, "unload waits for the host");
            // The patcher's lock is free, but v1 is being freed: it may not become g's body again.
            PatchException refused = assertThrows(PatchException.class, () -> patcher.redefine("g", v1));
            assertTrue(refused.getMessage().contains("being freed"), refused.getMessage());
            holder.release.countDown();
            loader.join();
            assertEquals(null, loadFailed.get(), "the load that held the host's lock");
            unloader.join();
            boolean v1Loaded = host.objects().contains(v1);
            long target = g.target();
            long v1g = v1.loaded().symbol("g").orElseThrow().address();
            assertTrue(v1Loaded || target != v1g, "g's stub leads to 0x" + Long.toHexString(target)
                    + " in g_v1.o, which is unmapped (unload result: " + unloaded.get() + ")");
            assertEquals(null, unloaded.get(), "the unload went through");
            assertFalse(v1Loaded);
            assertEquals(9L, (long) host.downcall("f1", LONG_LONG).invokeExact(4L), "g compiles again on the next call");
        }
    }

    @Test
    void aRetiredBodyTheHostRefusesToUnloadDoesNotFailEverySafepoint() throws Throwable {
        SafepointCoordinator coordinator = new SafepointCoordinator(0);
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, coordinator, t -> { })) {
            patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
            PatchFixtures.load(host, "lazy_caller");
            assertEquals(41L, (long) host.downcall("f0", LONG_LONG).invokeExact(20L));
            JitObject v1 = host.objects().getLast();
            JitObject args = PatchFixtures.load(host, "args_caller");   // calls g_v1.o's h, a plain global
            patcher.redefine("g", PatchFixtures.load(host, "g_v2"));
            assertThrows(JitLoadException.class, patcher::safepoint, "first safepoint: g_v1.o is still used");
            assertEquals(0, assertDoesNotThrow(() -> patcher.safepoint(), "every later safepoint throws the same refusal"));
            assertTrue(patcher.retired().contains(v1), "still tracked, to be freed once its users are gone");
            host.unload(args, false);
            assertEquals(1, patcher.safepoint(), "its user is gone: freed at the next stop");
            assertFalse(host.objects().contains(v1));
            assertTrue(patcher.retired().isEmpty());
        }
    }

    @Test
    void applyPendingRefusesAStoppedWorldWhoseStopHasEnded() throws Throwable {
        SafepointCoordinator coordinator = new SafepointCoordinator(0);
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, coordinator, t -> { })) {
            patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
            PatchFixtures.load(host, "lazy_caller");
            assertEquals(41L, (long) host.downcall("f0", LONG_LONG).invokeExact(20L));
            assertEquals(3, patcher.pendingSites());
            dev.safepointkit.roots.StoppedWorld[] stale = new dev.safepointkit.roots.StoppedWorld[1];
            coordinator.stopTheWorld(null, 0, w -> stale[0] = w);
            // The stop is over: mutators may run the unaligned sites now.
            assertThrows(IllegalStateException.class, () -> patcher.applyPending(stale[0]),
                    "unaligned multi-byte writes made outside any stop");
        }
    }

    @Test
    void oneTamperedPendingSiteDoesNotStopEveryLaterFree() throws Throwable {
        SafepointCoordinator coordinator = new SafepointCoordinator(0);
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, coordinator, t -> { })) {
            patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
            JitObject caller = PatchFixtures.load(host, "lazy_caller");
            assertEquals(41L, (long) host.downcall("f0", LONG_LONG).invokeExact(20L));
            long unaligned = host.symbol("g").orElseThrow().callSites().stream()
                    .filter(c -> c.objectKey() == caller.key() && c.isBranch() && c.address() % 4 != 0).findFirst().orElseThrow().address();
            var rel32 = host.codeAliases().writable(unaligned, 4).orElseThrow();
            JitObject v1 = host.objects().stream().filter(o -> o.name().equals("g_v1.o")).findFirst().orElseThrow();
            // Someone else points the waiting site at g_v1.o's h, not where the patcher left it.
            rel32.set(ValueLayout.JAVA_INT_UNALIGNED, 0, (int) (v1.loaded().symbol("h").orElseThrow().address() - (unaligned + 4)));
            PatchException reported = assertThrows(PatchException.class, patcher::safepoint);
            assertTrue(reported.getMessage().contains("nothing written"), reported.getMessage());
            assertEquals(3, patcher.pendingSites(), "all or none: every one still waits");
            JitObject spare = PatchFixtures.load(host, "ptr_spin");
            assertTrue(patcher.unload(spare), "nothing refers to ptr_spin: freed, the changed site reported once");
            assertFalse(host.objects().contains(spare));
            patcher.redefine("g", PatchFixtures.load(host, "g_v2"));
            assertEquals(0, patcher.safepoint(), "g_v1.o stays: the changed site still leads into it");
            assertTrue(host.objects().contains(v1));
            for (var f : caller.functions()) {
                if (f.name().matches("f[0-3]") && !(f.address() <= unaligned && unaligned < f.address() + f.size())) {
                    assertEquals(61L, (long) host.downcall(f.name(), LONG_LONG).invokeExact(20L), f.name() + " reaches g_v2");
                }
            }
        }
    }
}
