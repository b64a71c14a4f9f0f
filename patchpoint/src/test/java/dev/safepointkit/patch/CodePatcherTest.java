package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.internal.Libc;
import dev.safepointkit.host.CallSite;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.roots.Mutator;
import dev.safepointkit.roots.SafepointCoordinator;
import dev.safepointkit.roots.StopTimeoutException;
import dev.safepointkit.stackmap.testing.LlvmTools;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Lazy compilation, relinking, redefinition, deletion and sled rewriting on real LLVM-compiled code. */
class CodePatcherTest {
    private static final FunctionDescriptor LONG_LONG = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);

    private JitHost host;
    private SafepointCoordinator coordinator;
    private CodePatcher patcher;
    private Arena arena;
    private final List<Throwable> failures = new CopyOnWriteArrayList<>();
    private final AtomicInteger compiles = new AtomicInteger();
    private final List<String> freed = new CopyOnWriteArrayList<>();

    @BeforeEach
    void setUp() {
        host = new JitHost();
        arena = Arena.ofShared();
        coordinator = new SafepointCoordinator(0);
        patcher = new CodePatcher(host, coordinator, failures::add);
        host.addListener(new JitEventListener() {
            @Override
            public void objectFreeing(LoadedObject object) {
                freed.add(object.name());
            }
        });
    }

    @AfterEach
    void tearDown() {
        host.close();
        patcher.close();
        arena.close();
    }

    /** A compiler that loads {@code name}.o, counting. */
    private LazyCompiler loads(String object) {
        return fn -> {
            compiles.incrementAndGet();
            return PatchFixtures.load(host, object);
        };
    }

    private List<CallSite> sitesOf(String symbol, JitObject in) {
        return host.symbol(symbol).orElseThrow().callSites().stream()
                .filter(s -> s.objectKey() == in.key() && s.isBranch()).toList();
    }

    private long call(String function, long argument) throws Throwable {
        return (long) host.downcall(function, LONG_LONG).invokeExact(argument);
    }

    @Test
    void theFirstCallCompilesThenCallSitesAreRelinkedIntoDirectCalls() throws Throwable {
        Stub g = patcher.declare("g", loads("g_v1"));
        JitObject caller = PatchFixtures.load(host, "lazy_caller");
        assertEquals(g.address(), host.address("g").orElseThrow(), "the stub is g's address");
        List<CallSite> sites = sitesOf("g", caller);
        assertEquals(5, sites.size());
        for (CallSite s : sites) {
            assertEquals(g.address(), PatchFixtures.branchTarget(s.address()), "linked to the stub");
        }
        assertTrue(g.body().isEmpty());
        assertEquals(0, compiles.get());

        assertEquals(41L, call("f0", 20));   // compiles g through the stub, then returns 2*20 + 1
        assertEquals(1, compiles.get());
        long body = g.body().orElseThrow();
        assertEquals(body, g.target(), "the stub now leads to the body");
        assertEquals(body, host.objects().getLast().loaded().symbol("g").orElseThrow().address());

        // Aligned displacements were rewritten at once; the others wait for a safepoint.
        int aligned = 0;
        for (CallSite s : sites) {
            if (s.address() % 4 == 0) {
                aligned++;
                assertEquals(body, PatchFixtures.branchTarget(s.address()), "aligned site relinked");
            } else {
                assertEquals(g.address(), PatchFixtures.branchTarget(s.address()), "unaligned site still on the stub");
            }
        }
        assertEquals(2, aligned, "f2 and loop_g");
        assertEquals(3, patcher.pendingSites());
        assertEquals(0, patcher.safepoint(), "nothing to free");
        assertEquals(0, patcher.pendingSites());
        for (CallSite s : sites) {
            byte[] call = PatchFixtures.read(s.address() - 1, 5);
            assertTrue(call[0] == (byte) 0xE8, "still a call rel32");
            assertEquals(body, PatchFixtures.branchTarget(s.address()), "direct call to g's body");
            assertEquals(body, patcher.siteTarget(s.address()).orElseThrow());
        }
        for (int k = 0; k < 4; k++) {
            assertEquals(2L * k + 1, call("f" + k, k));
        }
        assertEquals(2L * (999 * 1000 / 2), call("loop_g", 1000));
        assertEquals(1, compiles.get());

        // The log holds every write with its old and new bytes.
        List<Patch> log = patcher.patchLog();
        assertEquals(5, log.size());
        for (Patch p : log) {
            long site = p.address() + 1;
            assertEquals(g.address(), site + 4 + X86Code.getInt(p.before(), 1));
            assertEquals(body, site + 4 + X86Code.getInt(p.after(), 1));
            assertEquals(site % 4 == 0, p.whileRunning());
        }

        // And back: every site through the stub again, which still leads to the body.
        RelinkReport back = patcher.unlink("g");
        assertEquals(2, back.patched());
        assertEquals(3, back.deferred());
        patcher.safepoint();
        for (CallSite s : sites) {
            assertEquals(g.address(), PatchFixtures.branchTarget(s.address()));
        }
        assertEquals(body, g.target());
        assertEquals(2L * (999 * 1000 / 2), call("loop_g", 1000));
        assertEquals(10, patcher.patchCount());
    }

    @Test
    void theStubHandsEveryArgumentRegisterAndStackArgumentOn() throws Throwable {
        // g_v1.o also defines h: one object, two declared functions.
        AtomicReference<JitObject> loaded = new AtomicReference<>();
        LazyCompiler once = fn -> {
            synchronized (loaded) {
                if (loaded.get() == null) {
                    loaded.set(PatchFixtures.load(host, "g_v1"));
                }
                return loaded.get();
            }
        };
        patcher.declare("g", once);
        patcher.declare("h", once);
        PatchFixtures.load(host, "args_caller");
        MethodHandle callH = host.downcall("call_h", FunctionDescriptor.of(ValueLayout.JAVA_DOUBLE, ValueLayout.JAVA_LONG));
        double expected = 1 + 2 * 10 + 3 * 100 + 4 * 1000 + 5 * 10000 + 6 * 100000 + 7 * 1000000 + 8 * 10000000L;
        double[] weights = {1.0e-1, 1.0e-2, 1.0e-3, 1.0e-4, 1.0e-5, 1.0e-6, 1.0e-7, 1.0e-8, 1.0e-9};
        for (int i = 0; i < 9; i++) {
            expected += (1.5 + i) * weights[i];
        }
        assertEquals(expected, (double) callH.invokeExact(1L), 0.0, "first call, through the reentry");
        assertEquals(expected, (double) callH.invokeExact(1L), 0.0, "later calls");
        assertEquals(loaded.get().loaded().symbol("h").orElseThrow().address(), patcher.stub("h").orElseThrow().target());
    }

    /**
     * With AVX-512 the zmm fixture (ymm and zmm arguments); without it the ymm fixture, whose code
     * needs only AVX2. Either way the test runs: no processor kind skips it.
     */
    @Test
    void theReentryHandsOnEveryLaneOfZmmArgumentsWithAvx512AndOfYmmArgumentsWithout() throws Throwable {
        double[] weights = {1, 2, 3, 5, 7, 11, 13, 17};
        if (!PatchFixtures.hasAvx512()) {
            // vh256 takes eight <4 x double> arguments in ymm0-7.
            MemorySegment in = arena.allocate(32 * 8, 32);
            double[] expected = new double[4];
            for (int v = 0; v < 8; v++) {
                for (int lane = 0; lane < 4; lane++) {
                    double x = 1 + v * 16 + lane + lane / 64.0;
                    in.setAtIndex(ValueLayout.JAVA_DOUBLE, v * 4 + lane, x);
                    expected[lane] += weights[v] * x;
                }
            }
            vectorArgumentsArriveWhole("vh256", "vec256", "clobber_vectors256", in, expected, "ymm");
            return;
        }
        // vh(<4 x double>, <8 x double>, ...) takes its arguments in ymm0, zmm1, ymm2, ..., zmm7.
        int[] widths = {4, 8, 4, 8, 4, 8, 4, 8};
        MemorySegment in = arena.allocate(48 * 8, 64);
        double[] expected = new double[8];
        int at = 0;
        for (int v = 0; v < 8; v++) {
            for (int lane = 0; lane < widths[v]; lane++) {
                double x = 1 + v * 16 + lane + lane / 64.0;
                in.setAtIndex(ValueLayout.JAVA_DOUBLE, at++, x);
                if (widths[v] == 8) {
                    expected[lane] += weights[v] * x;
                } else {
                    expected[lane] += weights[v] * x;        // lanes 0-3, then 3-0 again
                    expected[7 - lane] += weights[v] * x;
                }
            }
        }
        vectorArgumentsArriveWhole("vh", "vec", "clobber_vectors", in, expected, "ymm and zmm");
    }

    /**
     * Declares {@code fn} lazily, its body in fixture {@code FIXTURE_body}, and calls
     * {@code call_FN} of {@code FIXTURE_caller} through the reentry, then directly, then relinked.
     * The compile first runs {@code clobber}, which sets every bit of the vector argument
     * registers, so any lane the reentry does not save is visibly lost.
     */
    private void vectorArgumentsArriveWhole(String fn, String fixture, String clobber, MemorySegment in, double[] expected,
            String registers) throws Throwable {
        AtomicReference<MethodHandle> clobbering = new AtomicReference<>();
        patcher.declare(fn, name -> {
            MethodHandle clobberHandle = clobbering.get();
            try {
                clobberHandle.invokeExact();
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
            compiles.incrementAndGet();
            return PatchFixtures.load(host, fixture + "_body");
        });
        PatchFixtures.load(host, fixture + "_caller");
        clobbering.set(host.downcall(clobber, FunctionDescriptor.ofVoid()));
        MethodHandle call = host.downcall("call_" + fn, FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        long size = expected.length * 8L;
        MemorySegment lazy = arena.allocate(size, size);
        call.invokeExact(in, lazy);   // through the reentry: compiles fn
        assertEquals(1, compiles.get());
        MemorySegment direct = arena.allocate(size, size);
        call.invokeExact(in, direct);  // fn compiled: no reentry any more
        patcher.safepoint();
        MemorySegment relinked = arena.allocate(size, size);
        call.invokeExact(in, relinked);
        assertArrayEquals(expected, direct.toArray(ValueLayout.JAVA_DOUBLE), "the direct call");
        assertArrayEquals(expected, relinked.toArray(ValueLayout.JAVA_DOUBLE), "the relinked call");
        assertArrayEquals(direct.toArray(ValueLayout.JAVA_DOUBLE), lazy.toArray(ValueLayout.JAVA_DOUBLE),
                "the call through the reentry got every lane of every " + registers + " argument");
    }

    @Test
    void aLazyCompilerThatStopsTheWorldIsRefusedNamingTheFunction() throws Throwable {
        // The lock order: a stop comes before the patcher's lock, and a lazy compile holds that lock.
        List<Throwable> refused = new CopyOnWriteArrayList<>();
        JitObject spare = PatchFixtures.load(host, "ptr_spin");
        patcher.declare("g", fn -> {
            for (Action stop : List.<Action>of(() -> patcher.safepoint(), () -> patcher.unload(spare))) {
                try {
                    stop.run();
                    refused.add(new AssertionError("a stop from inside the LazyCompiler went through"));
                } catch (IllegalStateException expected) {
                    refused.add(expected);
                } catch (Throwable t) {
                    refused.add(new AssertionError("not the refusal", t));
                }
            }
            return PatchFixtures.load(host, "g_v1");
        });
        PatchFixtures.load(host, "lazy_caller");
        assertEquals(41L, call("f0", 20), "the first call compiles g, through the reentry");
        assertEquals(2, refused.size());
        for (Throwable t : refused) {
            assertTrue(t instanceof IllegalStateException, String.valueOf(t));
            assertTrue(t.getMessage().contains("the LazyCompiler of 'g'"), t.getMessage());
        }
        assertEquals(List.of(), failures);
        assertTrue(host.objects().contains(spare));
        assertTrue(patcher.unload(spare), "outside the compile a stop is fine");
    }

    @Test
    void threadsRacingTheFirstCallCompileOnce() throws Throwable {
        patcher.declare("g", loads("g_v1"));
        PatchFixtures.load(host, "lazy_caller");
        MethodHandle f0 = host.downcall("f0", LONG_LONG);
        CountDownLatch start = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        List<Throwable> errors = new CopyOnWriteArrayList<>();
        for (int t = 0; t < 4; t++) {
            long arg = t;
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    start.await();
                    for (int i = 0; i < 1000; i++) {
                        assertEquals(2 * arg + 1, (long) f0.invokeExact(arg));
                    }
                } catch (Throwable e) {
                    errors.add(e);
                }
            }));
        }
        start.countDown();
        for (Thread t : threads) {
            t.join();
        }
        assertEquals(List.of(), errors);
        assertEquals(1, compiles.get());
    }

    @Test
    void aFailedCompileContinuesIntoTheFallbackAndIsReported() throws Throwable {
        MethodHandle minusOne = MethodHandles.dropArguments(MethodHandles.constant(long.class, -1L), 0, long.class);
        MemorySegment fallback = Linker.nativeLinker().upcallStub(minusOne, LONG_LONG, arena);
        Stub g = patcher.declare("g", fn -> {
            throw new IllegalStateException("no IR for " + fn);
        }, fallback.address());
        PatchFixtures.load(host, "lazy_caller");
        assertEquals(0L, call("f0", 5), "fallback's -1, plus one");
        assertEquals(1, failures.size());
        assertTrue(failures.getFirst().getMessage().contains("no IR for g"), failures.getFirst().getMessage());
        assertTrue(failures.getFirst().getMessage().startsWith("lazy compile of 'g' failed: "), "names the function: "
                + failures.getFirst().getMessage());
        assertTrue(g.body().isEmpty());
        assertEquals(g.address(), PatchFixtures.branchTarget(sitesOf("g", host.objects().getFirst()).getFirst().address()));
    }

    @Test
    void aCompilerThatReturnsNoObjectIsRefusedNamingTheFunction() throws Throwable {
        MethodHandle minusOne = MethodHandles.dropArguments(MethodHandles.constant(long.class, -1L), 0, long.class);
        MemorySegment fallback = Linker.nativeLinker().upcallStub(minusOne, LONG_LONG, arena);
        Stub g = patcher.declare("g", fn -> null, fallback.address());
        PatchException e = assertThrows(PatchException.class, () -> patcher.compile("g"));
        assertEquals("the compiler of 'g' returned no object", e.getMessage());
        assertTrue(g.body().isEmpty());
        // Through the stub: reported, and the call goes on into the fallback.
        PatchFixtures.load(host, "lazy_caller");
        assertEquals(0L, call("f0", 5), "fallback's -1, plus one");
        assertEquals(1, failures.size());
        assertEquals("lazy compile of 'g' failed: the compiler of 'g' returned no object", failures.getFirst().getMessage());
        assertTrue(g.body().isEmpty());
    }

    @Test
    void aNameThatIsDeclaredOrDefinedAlreadyIsNotDeclaredAgain() throws Throwable {
        Stub g = patcher.declare("g", loads("g_v1"));
        JitLoadException again = assertThrows(JitLoadException.class, () -> patcher.declare("g", loads("g_v2")));
        assertEquals("'g' is already declared", again.getMessage());
        assertEquals(g.address(), host.address("g").orElseThrow(), "the first stub stays g's address");
        assertEquals(List.of("g"), List.copyOf(patcher.stubs().keySet()));
        PatchFixtures.load(host, "lazy_caller");
        JitLoadException defined = assertThrows(JitLoadException.class, () -> patcher.declare("f0", loads("g_v1")));
        assertTrue(defined.getMessage().contains("f0"), defined.getMessage());
        assertEquals(List.of("g"), List.copyOf(patcher.stubs().keySet()), "no stub for f0");
        assertEquals(41L, call("f0", 20), "f0 is still the loaded function, g compiled by the first declaration");
        assertEquals(1, compiles.get());
    }

    @Test
    void lazyCompilationThroughTheLlvmBridge() throws Throwable {
        LlvmCompiler llvm = LlvmTools.requireAvailable(LlvmCompiler::open);
        Stub g = patcher.declare("g", LazyCompiler.fromIr(host, llvm, PatchFixtures.source("g_v2"), LlvmCompiler.Options.DEFAULT));
        PatchFixtures.load(host, "lazy_caller");
        assertEquals(3L * 14 + 1, call("f2", 14));
        long body = g.body().orElseThrow();
        CallSite f2 = sitesOf("g", host.objects().getFirst()).stream().filter(s -> s.address() % 4 == 0).findFirst().orElseThrow();
        assertEquals(body, PatchFixtures.branchTarget(f2.address()));
        assertEquals("g.o", host.objects().getLast().name());
    }

    @Test
    void redefinitionMovesTheStubAndEverySiteAndFreesTheOldCodeAtASafepoint() throws Throwable {
        Stub g = patcher.declare("g", loads("g_v1"));
        JitObject caller = PatchFixtures.load(host, "lazy_caller");
        assertEquals(11L, call("f1", 5));
        patcher.safepoint();
        JitObject v1 = host.objects().getLast();

        JitObject v2 = PatchFixtures.load(host, "g_v2");
        RelinkReport r = patcher.redefine("g", v2);
        assertEquals(2, r.patched());
        assertEquals(3, r.deferred());
        long body2 = v2.loaded().symbol("g").orElseThrow().address();
        assertEquals(body2, g.target());
        assertEquals(16L, call("f2", 5), "f2's aligned site already calls v2");
        assertEquals(11L, call("f0", 5), "f0's unaligned site calls v1 until the safepoint; v1 is still there");
        assertEquals(List.of(v1), patcher.retired());
        assertFalse(freed.contains("g_v1.o"));

        assertEquals(1, patcher.safepoint());
        assertTrue(freed.contains("g_v1.o"), "listeners heard that v1 is freed");
        assertEquals(List.of(), patcher.retired());
        assertFalse(host.objects().contains(v1));
        for (CallSite s : sitesOf("g", caller)) {
            assertEquals(body2, PatchFixtures.branchTarget(s.address()));
        }
        for (int k = 0; k < 4; k++) {
            assertEquals(3L * k + 1, call("f" + k, k));
        }
        assertEquals(1, compiles.get());
    }

    /** Makes the call at {@code site} (its rel32) lead to {@code target}, behind the patcher's back. */
    private void rewriteBehindThePatchersBack(long site, long target) {
        MemorySegment rel32 = host.codeAliases().writable(site, 4).orElseThrow();
        rel32.set(ValueLayout.JAVA_INT_UNALIGNED, 0, (int) (target - (site + 4)));
    }

    @Test
    void aRedefinitionOfSeveralFunctionsMovesNoneWhenOneCannotMove() throws Throwable {
        Stub g = patcher.declare("g", loads("g_v1"));
        patcher.declare("h", loads("g_v1"));
        PatchFixtures.load(host, "lazy_caller");
        assertEquals(11L, call("f1", 5));
        long body1 = g.body().orElseThrow();
        long patches = patcher.patchCount();

        // g_v2.o defines g but not h: g, first in the map, must not move either.
        JitObject v2 = PatchFixtures.load(host, "g_v2");
        Map<String, JitObject> bodies = new LinkedHashMap<>();
        bodies.put("g", v2);
        bodies.put("h", v2);
        PatchException refused = assertThrows(PatchException.class, () -> patcher.redefine(bodies));
        assertTrue(refused.getMessage().contains("does not define 'h'"), refused.getMessage());
        assertEquals(body1, g.target(), "g's stub still leads to its old body");
        assertEquals(body1, g.body().orElseThrow());
        assertEquals(patches, patcher.patchCount(), "no site was written");
        assertEquals(11L, call("f2", 5), "f2's aligned site still calls g_v1");
        assertEquals(List.of(), patcher.retired());
    }

    @Test
    void aSiteThatRefusesItsRewriteAfterThePlansSendsTheFunctionsMovedBeforeItBack() throws Throwable {
        Stub g = patcher.declare("g", loads("g_v1"));
        Stub h = patcher.declare("h", loads("g_v1"));
        JitObject caller = PatchFixtures.load(host, "lazy_caller");
        PatchFixtures.load(host, "args_caller");
        MethodHandle callH = host.downcall("call_h", FunctionDescriptor.of(ValueLayout.JAVA_DOUBLE, ValueLayout.JAVA_LONG));
        double h1 = (double) callH.invokeExact(1L);
        assertEquals(11L, call("f1", 5));
        long gBody = g.body().orElseThrow();
        long hBody = h.body().orElseThrow();
        JitObject hObject = host.objects().get(host.objects().size() - 2);
        assertEquals(hBody, hObject.loaded().symbol("h").orElseThrow().address());

        JitObject hNew = PatchFixtures.load(host, "g_v1");
        JitObject gNew = PatchFixtures.load(host, "g_v2");
        Map<String, JitObject> bodies = new LinkedHashMap<>();
        bodies.put("h", hNew);
        bodies.put("g", gNew);
        // Every plan is made; then one of g's sites changes before h, first, is moved.
        CallSite tampered = sitesOf("g", caller).stream().filter(s -> s.address() % 4 == 0).toList().getLast();
        long gStatic = host.address("g_static").orElseThrow();
        patcher.beforeApplying = () -> rewriteBehindThePatchersBack(tampered.address(), gStatic);
        PatchException refused = assertThrows(PatchException.class, () -> patcher.redefine(bodies));
        patcher.beforeApplying = null;
        assertTrue(refused.getMessage().contains("nothing written"), refused.getMessage());
        assertEquals(0, refused.getSuppressed().length, "h went back: " + List.of(refused.getSuppressed()));
        assertEquals(hBody, h.target(), "h, moved first, is back on its old body");
        assertEquals(hBody, h.body().orElseThrow());
        assertEquals(gBody, g.target());
        assertEquals(h1, (double) callH.invokeExact(1L), 0.0);
        assertEquals(List.of(), patcher.retired(), "no body changed, nothing retired");
        assertTrue(host.objects().contains(hObject));
    }

    @Test
    void aRedefinitionThatCannotPatchEverySiteChangesNothing() throws Throwable {
        Stub g = patcher.declare("g", loads("g_v1"));
        JitObject caller = PatchFixtures.load(host, "lazy_caller");
        assertEquals(11L, call("f1", 5));
        patcher.safepoint();
        JitObject v1 = host.objects().getLast();
        long body1 = g.body().orElseThrow();
        List<CallSite> sites = sitesOf("g", caller);
        CallSite tampered = sites.stream().filter(s -> s.address() % 4 == 0).toList().getLast();
        long gStatic = host.address("g_static").orElseThrow();
        rewriteBehindThePatchersBack(tampered.address(), gStatic);
        long patches = patcher.patchCount();

        JitObject v2 = PatchFixtures.load(host, "g_v2");
        PatchException refused = assertThrows(PatchException.class, () -> patcher.redefine("g", v2));
        assertTrue(refused.getMessage().contains("nothing written"), refused.getMessage());
        assertEquals(body1, g.target(), "the stub still leads to the old body");
        assertEquals(body1, g.body().orElseThrow());
        assertEquals(patches, patcher.patchCount(), "no site was written");
        for (CallSite s : sites) {
            assertEquals(s == tampered ? gStatic : body1, PatchFixtures.branchTarget(s.address()));
        }
        assertEquals(0, patcher.pendingSites());
        assertEquals(List.of(), patcher.retired(), "v1 is still the body, nothing retired");
        assertTrue(host.objects().contains(v1));

        // Deleting the module fails the same way, and also changes nothing.
        assertThrows(PatchException.class, () -> patcher.unload(v1));
        assertEquals(body1, g.target());
        assertEquals(body1, g.body().orElseThrow());
        assertEquals(patches, patcher.patchCount());
        assertEquals(List.of(), patcher.retired());

        // Put right, the redefinition goes through whole.
        rewriteBehindThePatchersBack(tampered.address(), body1);
        patcher.redefine("g", v2);
        assertEquals(List.of(v1), patcher.retired());
        assertEquals(1, patcher.safepoint());
        for (CallSite s : sites) {
            assertEquals(v2.loaded().symbol("g").orElseThrow().address(), PatchFixtures.branchTarget(s.address()));
        }
    }

    @Test
    void aSafepointThatFindsAWaitingSiteChangedWritesNoneOfThem() throws Throwable {
        Stub g = patcher.declare("g", loads("g_v1"));
        JitObject caller = PatchFixtures.load(host, "lazy_caller");
        assertEquals(41L, call("f0", 20));
        long body = g.body().orElseThrow();
        List<CallSite> unaligned = sitesOf("g", caller).stream().filter(s -> s.address() % 4 != 0).toList();
        assertEquals(3, unaligned.size());
        assertEquals(3, patcher.pendingSites());
        CallSite tampered = unaligned.get(1);
        long gStatic = host.address("g_static").orElseThrow();
        rewriteBehindThePatchersBack(tampered.address(), gStatic);
        long patches = patcher.patchCount();

        PatchException refused = assertThrows(PatchException.class, patcher::safepoint);
        assertTrue(refused.getMessage().contains("nothing written"), refused.getMessage());
        assertEquals(patches, patcher.patchCount(), "no waiting site was written, not even those before the changed one");
        assertEquals(3, patcher.pendingSites(), "all of them still wait");
        for (CallSite s : unaligned) {
            assertEquals(s == tampered ? gStatic : g.address(), PatchFixtures.branchTarget(s.address()));
        }

        // Put right, the next safepoint writes them all.
        rewriteBehindThePatchersBack(tampered.address(), g.address());
        patcher.safepoint();
        assertEquals(0, patcher.pendingSites());
        assertEquals(patches + 3, patcher.patchCount());
        for (CallSite s : unaligned) {
            assertEquals(body, PatchFixtures.branchTarget(s.address()));
        }
    }

    @Test
    void aCallerLoadedAfterARelinkHasItsSitesRelinkedByTheNext() throws Throwable {
        Stub g = patcher.declare("g", loads("g_v1"));
        PatchFixtures.load(host, "lazy_caller");
        assertEquals(41L, call("f0", 20));
        patcher.safepoint();
        long body = g.body().orElseThrow();
        assertEquals(5, patcher.relink("g").unchanged());

        host.defineUpcall("spk_poll", coordinator.pollUpcall(failures::add),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS), arena);
        JitObject spin = PatchFixtures.load(host, "spin");
        List<CallSite> spinSites = sitesOf("g", spin);
        assertFalse(spinSites.isEmpty());
        RelinkReport r = patcher.relink("g");
        assertEquals(5, r.unchanged(), "lazy_caller's sites are where they were");
        assertEquals(spinSites.size(), r.patched() + r.deferred(), "every site of spin.o is found: " + r);
        patcher.safepoint();
        for (CallSite s : spinSites) {
            assertEquals(body, PatchFixtures.branchTarget(s.address()));
        }

        // And once spin.o is gone, its sites are no longer counted.
        host.unload(spin, true);
        RelinkReport after = patcher.unlink("g");
        assertEquals(5, after.patched() + after.deferred(), "only lazy_caller's sites: " + after);
    }

    @Test
    void thePatchLogKeepsTheNewestWritesWithTheirTextAndCountsAll() throws Throwable {
        patcher.declare("g", loads("g_v1"));
        PatchFixtures.load(host, "lazy_caller");
        assertEquals(41L, call("f0", 20));
        patcher.safepoint();
        long before = patcher.patchCount();
        assertEquals(5, before);
        // Each unlink and relink rewrites the two aligned sites; the unaligned ones wait, and the
        // relink that follows cancels their wait.
        int rounds = PatchLog.CAPACITY / 4 + 100;
        for (int i = 0; i < rounds; i++) {
            patcher.unlink("g");
            patcher.relink("g");
        }
        assertEquals(0, patcher.pendingSites());
        assertEquals(before + 4L * rounds, patcher.patchCount(), "every write counted");
        List<Patch> log = patcher.patchLog();
        assertEquals(PatchLog.CAPACITY, log.size(), "only the newest are kept");
        Patch last = log.getLast();
        Patch back = log.get(log.size() - 3);
        assertTrue(last.what().endsWith(" to g direct"), last.what());
        assertTrue(last.whileRunning());
        assertTrue(back.what().endsWith(" to g via its stub"), back.what());
        long site = last.address() + 1;
        assertEquals(last.before()[0], last.after()[0], "the opcode stays");
        assertEquals(X86Code.getInt(back.after(), 1) + site + 4, X86Code.getInt(last.before(), 1) + site + 4,
                "the relink starts from where the unlink left the site");
        for (int i = 1; i < log.size(); i++) {
            assertTrue(log.get(i - 1).nanoTime() <= log.get(i).nanoTime(), "oldest first");
        }
    }

    @Test
    void aRetiredObjectThatBecomesTheBodyAgainIsNotFreed() throws Throwable {
        Stub g = patcher.declare("g", loads("g_v1"));
        PatchFixtures.load(host, "lazy_caller");
        assertEquals(41L, call("f0", 20));
        JitObject v1 = host.objects().getLast();
        JitObject v2 = PatchFixtures.load(host, "g_v2");
        patcher.redefine("g", v2);
        assertEquals(List.of(v1), patcher.retired());
        patcher.redefine("g", v1);   // back to the first body, which was retired
        assertEquals(List.of(v2), patcher.retired(), "v1 holds g's body again");
        assertEquals(1, patcher.safepoint());
        assertTrue(host.objects().contains(v1), "the body g's stub leads to is still mapped");
        assertFalse(host.objects().contains(v2));
        assertEquals(v1.loaded().symbol("g").orElseThrow().address(), g.target());
        assertEquals(41L, call("f0", 20));
    }

    @Test
    void aRetiredObjectThatFailsToUnloadDoesNotLeakTheOthers() throws Throwable {
        patcher.declare("g", loads("g_v1"));
        PatchFixtures.load(host, "lazy_caller");
        assertEquals(41L, call("f0", 20));
        JitObject v1 = host.objects().getLast();
        JitObject v2 = PatchFixtures.load(host, "g_v2");
        patcher.redefine("g", v2);
        assertEquals(List.of(v1), patcher.retired());

        host.unload(v1, true);   // behind the patcher's back (forced): gone before any stop could free it
        // Deleting v2 retires it too; its safepoint frees v2 and drops v1, which the host no longer has.
        assertTrue(patcher.unload(v2));
        assertFalse(host.objects().contains(v2), "the other retired object is freed at the same safepoint");
        assertEquals(List.of(), patcher.retired(), "g_v1.o, gone from the host, is tracked no more");
        assertEquals(0, patcher.safepoint(), "nothing left to free");
        assertEquals(2L * 20 + 1, call("f0", 20));
    }

    @Test
    void deletingTheModuleTurnsItsCallSitesBackIntoStubCalls() throws Throwable {
        Stub g = patcher.declare("g", loads("g_v1"));
        JitObject caller = PatchFixtures.load(host, "lazy_caller");
        assertEquals(7L, call("f3", 3));
        patcher.safepoint();
        JitObject v1 = host.objects().getLast();
        long body = g.body().orElseThrow();
        for (CallSite s : sitesOf("g", caller)) {
            assertEquals(body, PatchFixtures.branchTarget(s.address()));
        }

        assertTrue(patcher.unload(v1));
        assertTrue(freed.contains("g_v1.o"));
        assertTrue(g.body().isEmpty());
        assertFalse(g.target() == body, "the stub leads to its lazy entry again");
        for (CallSite s : sitesOf("g", caller)) {
            assertEquals(g.address(), PatchFixtures.branchTarget(s.address()), "back on the stub");
        }
        assertEquals(7L, call("f3", 3), "the next call compiles g again");
        assertEquals(2, compiles.get());
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)  // without the stop timeout, the delete waits forever
    void aDeleteWhoseStopTimesOutFailsNamingTheMutatorAndTheObjectStaysRetiredAndLoaded() throws Throwable {
        patcher.declare("g", loads("g_v1"));
        PatchFixtures.load(host, "lazy_caller");
        assertEquals(41L, call("f0", 20));
        JitObject v1 = host.objects().getLast();
        coordinator.stopTimeout(Duration.ofMillis(200));
        // A mutator in JIT code that never reaches a poll.
        CountDownLatch inJit = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread stuck = Thread.ofPlatform().name("never-polls").start(() -> {
            try (Mutator m = coordinator.attach(); var scope = m.enter()) {
                inJit.countDown();
                release.await();
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        assertTrue(inJit.await(10, TimeUnit.SECONDS));
        StopTimeoutException e;
        try {
            e = assertThrows(StopTimeoutException.class, () -> patcher.unload(v1));
        } finally {
            release.countDown();
            stuck.join();
        }
        if (failure.get() != null) {
            throw new AssertionError("the mutator thread failed", failure.get());
        }
        assertEquals("the stop waited 200 ms and these mutators did not reach a poll: mutator 0 (never-polls)",
                e.getMessage());
        assertTrue(host.objects().contains(v1), "not freed without a stop that shows no thread runs it");
        assertFalse(freed.contains("g_v1.o"));
        assertEquals(List.of(v1), patcher.retired(), "it stays retired");
        JitLoadException refused = assertThrows(JitLoadException.class, () -> host.unload(v1, false));
        assertTrue(refused.getMessage().contains("retired by the code patcher"), refused.getMessage());
        assertEquals(1, patcher.safepoint(), "the next stop frees it");
        assertFalse(host.objects().contains(v1));
        assertEquals(41L, call("f0", 20), "g compiles again");
        assertEquals(2, compiles.get());
    }

    @Test
    void withoutACoordinatorUnalignedSitesStayOnTheStubAndSledsAreRefused() throws Throwable {
        try (JitHost plain = new JitHost(); CodePatcher p = new CodePatcher(plain)) {
            Stub g = p.declare("g", LazyCompiler.fromObject(plain, "g_v1.o", PatchFixtures.bytes("g_v1")));
            JitObject caller = PatchFixtures.load(plain, "lazy_caller");
            assertEquals(9L, (long) plain.downcall("f1", LONG_LONG).invokeExact(4L));
            long body = g.body().orElseThrow();
            RelinkReport again = p.relink("g");
            assertEquals(2, again.unchanged());
            assertEquals(3, again.stayOnStub());
            assertEquals(0, p.pendingSites());
            for (CallSite s : plain.symbol("g").orElseThrow().callSites()) {
                if (s.objectKey() == caller.key()) {
                    assertEquals(s.address() % 4 == 0 ? body : g.address(), PatchFixtures.branchTarget(s.address()));
                }
            }
            assertThrows(IllegalStateException.class, p::safepoint);
            assertEquals("g_v1.o", plain.objects().getLast().name());
        }
    }

    @Test
    void withoutACoordinatorAWholeSledRewriteAndAnApplyPendingAreRefusedNamingWhatTheyNeed() throws Throwable {
        SafepointCoordinator other = new SafepointCoordinator(0);
        try (JitHost plain = new JitHost(); CodePatcher p = new CodePatcher(plain)) {
            plain.defineUpcall("spk_poll", other.pollUpcall(failures::add),
                    FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS), arena);
            p.declare("g", LazyCompiler.fromObject(plain, "g_v1.o", PatchFixtures.bytes("g_v1")));
            JitObject spin = PatchFixtures.load(plain, "spin");
            Sled sled = p.sled(spin, 77, 16);
            byte[] nops = PatchFixtures.read(sled.address(), 16);
            long one = plain.address("mark_one").orElseThrow();
            IllegalStateException call = assertThrows(IllegalStateException.class, () -> p.callFromSled(sled, one));
            assertEquals("rewriting a whole sled needs a SafepointCoordinator: this patcher has none", call.getMessage());
            IllegalStateException restore = assertThrows(IllegalStateException.class, () -> p.restoreSled(sled));
            assertEquals(call.getMessage(), restore.getMessage());
            assertArrayEquals(nops, PatchFixtures.read(sled.address(), 16), "nothing written");
            assertEquals(0, p.patchCount());

            assertThrows(IllegalArgumentException.class, () -> p.applyPending(null));
            AtomicReference<Throwable> inStop = new AtomicReference<>();
            other.stopTheWorld(null, 0, world -> {
                try {
                    p.applyPending(world);
                } catch (Throwable t) {
                    inStop.set(t);
                }
            });
            assertTrue(inStop.get() instanceof IllegalStateException
                    && inStop.get().getMessage().endsWith("this one has no coordinator"), String.valueOf(inStop.get()));
        }
    }

    /** spin.o with its runtime: spk_poll bound to the coordinator, g declared. */
    private JitObject loadSpin() throws Exception {
        host.defineUpcall("spk_poll", coordinator.pollUpcall(failures::add),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS), arena);
        patcher.declare("g", loads("g_v1"));
        return PatchFixtures.load(host, "spin");
    }

    @Test
    void aSledRetargetQueuedBehindARestoreIsRefusedNotWrittenOverIt() throws Throwable {
        JitObject spin = loadSpin();
        Sled aligned = patcher.sled(spin, 78, 16);
        assertTrue(SledPatcher.retargetIsAtomic(aligned), "sled_aligned's imm64 is 8-byte aligned");
        long one = host.address("mark_one").orElseThrow();
        long two = host.address("mark_two").orElseThrow();
        patcher.callFromSled(aligned, one);
        // A compile of another function holds the patcher's lock while a restore (inside its stop)
        // and then a retarget queue behind it: the retarget must see the NOPs the restore wrote.
        CountDownLatch compiling = new CountDownLatch(1);
        CountDownLatch finish = new CountDownLatch(1);
        patcher.declare("held", fn -> {
            compiling.countDown();
            finish.await(20, TimeUnit.SECONDS);
            throw new IllegalStateException("no body: only the lock was wanted");
        });
        Thread holder = Thread.ofPlatform().start(() -> {
            try {
                patcher.compile("held");
            } catch (PatchException expected) {
                // the compiler's refusal
            }
        });
        assertTrue(compiling.await(10, TimeUnit.SECONDS));
        AtomicReference<Throwable> restored = new AtomicReference<>();
        Thread restorer = Thread.ofPlatform().start(() -> {
            try {
                patcher.restoreSled(aligned);
            } catch (Throwable t) {
                restored.set(t);
            }
        });
        awaitWaiting(restorer);
        AtomicReference<Throwable> retargeted = new AtomicReference<>();
        Thread retargeter = Thread.ofPlatform().start(() -> {
            try {
                patcher.retargetSled(aligned, two);
            } catch (Throwable t) {
                retargeted.set(t);
            }
        });
        awaitWaiting(retargeter);
        finish.countDown();
        holder.join();
        restorer.join();
        retargeter.join();
        assertEquals(null, restored.get());
        assertTrue(retargeted.get() instanceof PatchException && retargeted.get().getMessage().contains("holds no call"),
                "the retarget made its bytes from the sled as the restore left it: " + retargeted.get());
        assertEquals(Optional.empty(), patcher.sledTarget(aligned), "the restore is not undone");
    }

    /** Waits until {@code t} is parked (on the patcher's lock, here), then a little longer. */
    private static void awaitWaiting(Thread t) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (t.getState() != Thread.State.WAITING && t.getState() != Thread.State.TIMED_WAITING) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting for " + t);
            Thread.sleep(1);
        }
        Thread.sleep(50);
    }

    @Test
    void aPatchpointSledIsRewrittenRetargetedAndRestoredWhole() throws Throwable {
        JitObject spin = loadSpin();
        MethodHandle sledFn = host.downcall("sled", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
        MemorySegment slot = arena.allocate(8, 8);
        slot.set(ValueLayout.JAVA_LONG, 0, 99);
        assertEquals(0L, (long) sledFn.invokeExact(slot), "NOPs: the slot keeps the 0 stored before the sled");

        List<Sled> found = patcher.sleds(spin, 77);
        assertEquals(1, found.size());
        Sled sled = found.getFirst();
        assertEquals(16, sled.length(), "llc's sled: numBytes 16, decoded from its NOPs");
        assertEquals("sled", sled.function());
        Sled exact = patcher.sled(spin, 77, 16);
        assertEquals(sled, exact);
        long one = host.address("mark_one").orElseThrow();
        long two = host.address("mark_two").orElseThrow();

        patcher.callFromSled(sled, one);
        byte[] bytes = PatchFixtures.read(sled.address(), 16);
        assertTrue(X86Code.isSledCall(bytes));
        assertEquals(one, X86Code.sledCallTarget(bytes));
        assertEquals(3, X86Code.nopRun(bytes, 13), "NOPs fill the rest");
        assertEquals(1L, (long) sledFn.invokeExact(slot));

        patcher.retargetSled(sled, two);
        assertEquals(two, patcher.sledTarget(sled).orElseThrow());
        assertEquals(2L, (long) sledFn.invokeExact(slot));

        patcher.restoreSled(sled);
        bytes = PatchFixtures.read(sled.address(), 16);
        assertEquals(16, X86Code.nopRun(bytes, 0));
        assertEquals(13, X86Code.nopLength(bytes, 0) + X86Code.nopLength(bytes, 8), "an instruction ends at 13");
        assertEquals(0L, (long) sledFn.invokeExact(slot));
        assertTrue(patcher.sledTarget(sled).isEmpty());
        // A sled found again after a rewrite decodes the same way.
        patcher.callFromSled(sled, one);
        assertEquals(16, patcher.sleds(spin, 77).getFirst().length());
        List<Patch> log = patcher.patchLog();
        assertEquals(4, log.size());
        assertFalse(log.get(0).whileRunning(), "a whole sled is written at a safepoint");
        assertEquals((sled.address() + 2) % 8 == 0, log.get(1).whileRunning(), "a retarget runs atomically when the imm64 is aligned");
        assertFalse(log.get(2).whileRunning());
    }

    @Test
    void aSledTooShortForACallOrNotFoundByThePatcherIsRefusedNamingItAndNothingIsWritten() throws Throwable {
        JitObject spin = loadSpin();
        MethodHandle sledFn = host.downcall("sled", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
        MemorySegment slot = arena.allocate(8, 8);
        Sled whole = patcher.sled(spin, 77, 16);
        byte[] nops = PatchFixtures.read(whole.address(), 16);
        long one = host.address("mark_one").orElseThrow();
        String at = String.format("0x%x", whole.address());

        PatchException notOne = assertThrows(PatchException.class, () -> patcher.sled(spin, 12_345, 16));
        assertEquals("spin.o: 0 patchpoints with ID 12345, expected one", notOne.getMessage());
        PatchException longer = assertThrows(PatchException.class, () -> patcher.sled(spin, 77, 17));
        assertEquals("sled: patchpoint 77 at " + at + ": only 16 bytes of sled, expected 17", longer.getMessage());
        // A sled record the patcher never found (one byte into the real one): its bytes are unknown to it.
        Sled unknown = new Sled(whole.address() + 1, 15, "sled", 77, spin.key());
        PatchException notFound = assertThrows(PatchException.class, () -> patcher.restoreSled(unknown));
        assertEquals(String.format("0x%x: not a sled this patcher found (use sleds or sled first)", unknown.address()),
                notFound.getMessage());
        assertThrows(PatchException.class, () -> patcher.callFromSled(unknown, one), "nor rewritten into a call");
        // A sled compiled with numBytes 8: found, but a call form needs 13.
        Sled eight = patcher.sled(spin, 77, 8);
        PatchException tooShort = assertThrows(PatchException.class, () -> patcher.callFromSled(eight, one));
        assertEquals("sled: patchpoint 77 at " + at + ": 8 bytes cannot hold a call (13 needed)", tooShort.getMessage());

        assertArrayEquals(nops, PatchFixtures.read(whole.address(), 16), "nothing written");
        assertEquals(0, patcher.patchCount());
        assertEquals(0L, (long) sledFn.invokeExact(slot), "the sled still runs as NOPs");
    }

    @Test
    void everySledWriteIsFollowedByExactlyOneCoreSerializingBarrier() throws Throwable {
        JitObject spin = loadSpin();
        Sled sled = patcher.sled(spin, 77, 16);
        Sled aligned = patcher.sled(spin, 78, 16);
        assertFalse(SledPatcher.retargetIsAtomic(sled), "sled's imm64 is not 8-byte aligned: retargets wait for a stop");
        assertTrue(SledPatcher.retargetIsAtomic(aligned), "sled_aligned's is");
        long one = host.address("mark_one").orElseThrow();
        long two = host.address("mark_two").orElseThrow();
        assertEquals(0, barriersDuring(() -> patcher.safepoint()), "a stop that writes nothing owes no barrier");
        assertEquals(1, barriersDuring(() -> patcher.callFromSled(sled, one)), "whole sled at a stop");
        assertEquals(1, barriersDuring(() -> patcher.retargetSled(sled, two)), "unaligned retarget at a stop");
        assertEquals(1, barriersDuring(() -> patcher.restoreSled(sled)), "NOPs back at a stop");
        assertEquals(1, barriersDuring(() -> patcher.callFromSled(aligned, one)));
        assertEquals(1, barriersDuring(() -> patcher.retargetSled(aligned, two)), "atomic retarget while threads run");
        assertEquals(5, patcher.patchLog().size());
    }

    @Test
    void aRelinkOwesItsBarrierAndEveryFreeOfCodePaysItFirst() throws Throwable {
        JitObject spare = PatchFixtures.load(host, "ptr_spin");
        patcher.declare("g", loads("g_v1"));
        PatchFixtures.load(host, "lazy_caller");
        assertEquals(41L, call("f0", 20), "compiles g");
        long[] barriersAtFreeing = new long[1];
        host.addListener(new JitEventListener() {
            @Override
            public void objectFreeing(LoadedObject object) {
                barriersAtFreeing[0] = Libc.membarrierCalls();   // after the patcher's listener, before the unmap
            }
        });
        assertTrue(patcher.barrierOwed(), "the first call's relink of the aligned sites owes its barrier");
        patcher.serializeNow();
        assertFalse(patcher.barrierOwed());

        assertEquals(0, barriersDuring(() -> assertEquals(2, patcher.unlink("g").patched())), "no barrier per relink");
        assertEquals(0, barriersDuring(() -> assertEquals(2, patcher.relink("g").patched())));
        assertTrue(patcher.barrierOwed());
        assertEquals(41L, call("f0", 20), "the sites work while the barrier is owed");
        long before = Libc.membarrierCalls();
        host.unload(spare, false);   // unmaps code: no thread may run old bytes by then
        assertEquals(before + 1, barriersAtFreeing[0], "the owed barrier is paid before the object's code is unmapped");
        assertEquals(before + 1, Libc.membarrierCalls());
        assertFalse(patcher.barrierOwed());
        assertEquals(0, barriersDuring(() -> patcher.serializeNow()), "nothing owed: nothing paid");

        patcher.unlink("g");
        assertEquals(1, barriersDuring(() -> patcher.safepoint()), "a stop pays what is owed before mutators resume");
        patcher.relink("g");
        assertEquals(0, barriersDuring(() -> patcher.close()), "lazy_caller still calls the stubs: nothing is freed");
        assertEquals(1, barriersDuring(() -> host.close()), "the host's unloads, and the stubs' free after them, pay once");
    }

    @FunctionalInterface
    private interface Action {
        void run() throws Throwable;
    }

    /** The membarrier calls the process made while {@code action} ran. */
    private static long barriersDuring(Action action) throws Throwable {
        long before = Libc.membarrierCalls();
        action.run();
        return Libc.membarrierCalls() - before;
    }

    @Test
    void aPatchIsRefusedWhenTheCodeIsNotWhatThePatcherExpects() throws Throwable {
        JitObject spin = loadSpin();
        Sled sled = patcher.sled(spin, 77, 16);
        byte[] original = PatchFixtures.read(sled.address(), 16);
        // A second patcher rewrites the sled behind the first one's back.
        try (CodePatcher other = new CodePatcher(host, coordinator, failures::add)) {
            Sled same = other.sled(spin, 77, 16);
            other.callFromSled(same, host.address("mark_one").orElseThrow());
        }
        byte[] changed = PatchFixtures.read(sled.address(), 16);
        assertFalse(java.util.Arrays.equals(original, changed));
        PatchException refused = assertThrows(PatchException.class, () -> patcher.restoreSled(sled));
        assertTrue(refused.getMessage().contains("expected [" + X86Code.hex(original) + "]"), refused.getMessage());
        assertArrayEquals(changed, PatchFixtures.read(sled.address(), 16), "nothing written");
        assertEquals(0, patcher.patchLog().size());
        assertThrows(PatchException.class, () -> patcher.retargetSled(sled, 0x1234), "not in the call form as it knows it");
    }

    @Test
    void retiredCodeThatAStoppedThreadIsRunningIsNotFreed() throws Throwable {
        JitObject spin = loadSpin();
        MethodHandle spinFn = host.downcall("spin", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                ValueLayout.ADDRESS));
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicReference<Throwable> error = new AtomicReference<>();
        MemorySegment counts = arena.allocate(8 * 7, 8);
        Thread mutatorThread = Thread.ofPlatform().start(() -> {
            try (Mutator m = coordinator.attach()) {
                // spin runs until released: one long call, parked at polls during every stop.
                try (var scope = m.enter()) {
                    running.countDown();
                    while (release.getCount() > 0) {
                        spinFn.invokeExact(m.context(), 1000L, counts);
                    }
                }
            } catch (Throwable t) {
                error.set(t);
            }
        });
        assertTrue(running.await(10, TimeUnit.SECONDS));
        // Retire spin.o while the thread runs it: stops can never free it.
        Thread.sleep(20);
        assertFalse(patcher.unload(spin), "not freed while a stopped thread runs it");
        boolean stillThere = host.objects().contains(spin);
        release.countDown();
        mutatorThread.join();
        if (error.get() != null) {
            throw error.get();
        }
        assertTrue(stillThere, "spin.o was on the stopped thread's stack");
        assertEquals(List.of(spin), patcher.retired());
        assertEquals(1, patcher.safepoint(), "freed once no thread runs it");
        assertTrue(freed.contains("spin.o"));
        assertEquals(List.of(), failures);
    }
    @Test
    void retiredCodeThatCallsIntoJavaIsFreedAtAStopWhereNoThreadRunsIt() throws Throwable {
        // g_polling.o holds a poll function, but the stopped thread polls in spin.o's: the call its
        // slot follows is a direct call into spin.o, so g_polling.o is not running and is freed
        // although a thread is stopped (it used to wait for a stop with no thread in JIT code).
        JitObject spin = loadSpin();
        JitObject polling = PatchFixtures.load(host, "g_polling");
        patcher.redefine("g", polling);
        patcher.redefine("g", PatchFixtures.load(host, "g_v2"));
        assertEquals(List.of(polling), patcher.retired());
        MethodHandle spinFn = host.downcall("spin", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                ValueLayout.ADDRESS));
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicReference<Throwable> error = new AtomicReference<>();
        MemorySegment counts = arena.allocate(8 * 7, 8);
        Thread mutatorThread = Thread.ofPlatform().start(() -> {
            try (Mutator m = coordinator.attach()) {
                try (var scope = m.enter()) {
                    running.countDown();
                    while (release.getCount() > 0) {
                        spinFn.invokeExact(m.context(), 1000L, counts);
                    }
                }
            } catch (Throwable t) {
                error.set(t);
            }
        });
        int freedWhileStopped;
        long stopsBefore = coordinator.stops();
        try {
            assertTrue(running.await(10, TimeUnit.SECONDS));
            Thread.sleep(20);
            freedWhileStopped = patcher.safepoint();
        } finally {
            release.countDown();
            mutatorThread.join();
        }
        if (error.get() != null) {
            throw error.get();
        }
        assertEquals(stopsBefore + 1, coordinator.stops());
        assertEquals(1, freedWhileStopped, "no stopped thread runs g_polling.o: freed while the spinning thread is parked");
        assertFalse(host.objects().contains(polling));
        assertTrue(host.objects().contains(spin));
        assertEquals(List.of(), failures);
    }

    @Test
    void retiredCodeWhoseFrameLiesAboveThePollSlotIsNotFreed() throws Throwable {
        // ptr_spin polls through g_relay.o's relay_poll, which calls g_polling.o's poll function by
        // name. Parked there, the function below the slot is in g_polling.o (not retired), and
        // g_relay.o, retired, has its frame above the slot: only the stack scan sees it.
        host.defineRuntimeSymbol("spk_poll", Linker.nativeLinker().upcallStub(coordinator.pollUpcall(failures::add),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS), arena));
        patcher.declare("g", loads("g_v1"));
        PatchFixtures.load(host, "ptr_spin");
        JitObject polling = PatchFixtures.load(host, "g_polling");
        JitObject relay = PatchFixtures.load(host, "g_relay");
        patcher.redefine("g", relay);
        patcher.redefine("g", PatchFixtures.load(host, "g_v2"));
        assertEquals(List.of(relay), patcher.retired());
        long relayFunction = relay.loaded().symbol("relay_poll").orElseThrow().address();
        MethodHandle spinFn = host.downcall("ptr_spin", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                ValueLayout.ADDRESS));
        MemorySegment go = arena.allocate(8, 8);
        go.set(ValueLayout.JAVA_LONG, 0, 1);
        CountDownLatch running = new CountDownLatch(1);
        AtomicReference<Throwable> error = new AtomicReference<>();
        Thread mutatorThread = Thread.ofPlatform().start(() -> {
            try (Mutator m = coordinator.attach()) {
                try (var scope = m.enter()) {
                    running.countDown();
                    spinFn.invokeExact(m.context(), MemorySegment.ofAddress(relayFunction), go);
                }
            } catch (Throwable t) {
                error.set(t);
            }
        });
        int freedWhileParked;
        boolean loadedAfterStop;
        long stopsBefore = coordinator.stops();
        try {
            assertTrue(running.await(10, TimeUnit.SECONDS));
            Thread.sleep(20);
            freedWhileParked = patcher.safepoint();
            loadedAfterStop = host.objects().contains(relay);
        } finally {
            go.set(ValueLayout.JAVA_LONG, 0, 0);
            mutatorThread.join();
        }
        assertTrue(loadedAfterStop, "g_relay.o was freed while a parked thread returns into relay_poll");
        if (error.get() != null) {
            throw error.get();
        }
        assertEquals(stopsBefore + 1, coordinator.stops(), "the thread was parked during the stop");
        assertEquals(0, freedWhileParked, "the parked thread returns into relay_poll");
        assertTrue(host.objects().contains(polling));
        assertEquals(List.of(relay), patcher.retired());
        assertEquals(1, patcher.safepoint(), "freed once the thread is gone");
        assertFalse(host.objects().contains(relay));
        assertEquals(List.of(), failures);
    }

    /**
     * Runs {@code spinner} (a loop that polls through g_polling.o and reads g_relay.o's
     * relay_running through a pointer it keeps) on a mutator, retires g_relay.o and stops the
     * world: the stop must not free it, and the next one, once the thread is gone, must.
     */
    private void retiredDataAParkedThreadReadsIsNotFreed(String spinner, String kept) throws Throwable {
        host.defineRuntimeSymbol("spk_poll", Linker.nativeLinker().upcallStub(coordinator.pollUpcall(failures::add),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS), arena));
        patcher.declare("g", loads("g_v1"));
        PatchFixtures.load(host, "g_polling");
        PatchFixtures.load(host, spinner);
        JitObject relay = PatchFixtures.load(host, "g_relay");
        patcher.redefine("g", relay);
        patcher.redefine("g", PatchFixtures.load(host, "g_v2"));
        assertEquals(List.of(relay), patcher.retired());
        MemorySegment running = MemorySegment.ofAddress(relay.loaded().symbol("relay_running").orElseThrow().address())
                .reinterpret(8);   // a global of g_relay.o: 8 bytes, mapped while it is loaded
        MethodHandle spinFn = host.downcall(spinner, FunctionDescriptor.ofVoid(ValueLayout.ADDRESS,
                ValueLayout.ADDRESS));
        CountDownLatch started = new CountDownLatch(1);
        AtomicReference<Throwable> error = new AtomicReference<>();
        Thread mutatorThread = Thread.ofPlatform().start(() -> {
            try (Mutator m = coordinator.attach()) {
                try (var scope = m.enter()) {
                    started.countDown();
                    spinFn.invokeExact(m.context(), running);
                }
            } catch (Throwable t) {
                error.set(t);
            }
        });
        int freedWhileParked;
        boolean loadedAfterStop;
        try {
            assertTrue(started.await(10, TimeUnit.SECONDS));
            Thread.sleep(20);
            freedWhileParked = patcher.safepoint();
            loadedAfterStop = host.objects().contains(relay);
        } finally {
            if (host.objects().contains(relay)) {
                running.set(ValueLayout.JAVA_LONG, 0, 0);
            }
            mutatorThread.join(5_000);
        }
        assertTrue(loadedAfterStop, "g_relay.o was freed while a parked frame holds a pointer into its data " + kept);
        assertFalse(mutatorThread.isAlive());
        if (error.get() != null) {
            throw error.get();
        }
        assertEquals(0, freedWhileParked);
        assertEquals(1, patcher.safepoint(), "freed once the thread is gone");
        assertFalse(host.objects().contains(relay));
        assertEquals(List.of(), failures);
    }

    @Test
    void aRetiredObjectWhoseDataAStoppedFrameStillPointsIntoIsNotFreed() throws Throwable {
        // ptr_spin_held keeps its pointer to g_relay.o's relay_running in its frame: no code of
        // g_relay.o is on the stack, but the thread reads that word again once it resumes.
        retiredDataAParkedThreadReadsIsNotFreed("ptr_spin_held", "in its frame");
    }

    @Test
    void aRetiredObjectThatAParkedFramesRegisterPointsIntoIsNotFreed() throws Throwable {
        // ptr_spin_reg keeps the pointer in RBX across the poll: above the slot nothing points
        // into g_relay.o; the upcall stub below the poll saves RBX.
        retiredDataAParkedThreadReadsIsNotFreed("ptr_spin_reg", "in a register");
    }

    @Test
    void retiredCodeAThreadIsParkedInBelowItsPollSlotIsNotFreed() throws Throwable {
        // The poll upcall given as a plain runtime symbol (an FFM upcall stub, not defineUpcall),
        // and ptr_spin polls through a function pointer into g_polling.o's poll function. Parked
        // there, the thread has that function's frame below the slot it recorded: no scan of the
        // stack from the slot upwards sees g_polling.o, and the host cannot tell spk_poll calls Java.
        host.defineRuntimeSymbol("spk_poll", Linker.nativeLinker().upcallStub(coordinator.pollUpcall(failures::add),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS), arena));
        patcher.declare("g", loads("g_v1"));
        PatchFixtures.load(host, "ptr_spin");
        JitObject polling = PatchFixtures.load(host, "g_polling");
        patcher.redefine("g", polling);
        patcher.redefine("g", PatchFixtures.load(host, "g_v2"));
        assertEquals(List.of(polling), patcher.retired());
        long pollFunction = polling.loaded().symbol("g_polling_poll").orElseThrow().address();
        MethodHandle spinFn = host.downcall("ptr_spin", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                ValueLayout.ADDRESS));
        MemorySegment go = arena.allocate(8, 8);
        go.set(ValueLayout.JAVA_LONG, 0, 1);
        CountDownLatch running = new CountDownLatch(1);
        AtomicReference<Throwable> error = new AtomicReference<>();
        Thread mutatorThread = Thread.ofPlatform().start(() -> {
            try (Mutator m = coordinator.attach()) {
                try (var scope = m.enter()) {
                    running.countDown();
                    spinFn.invokeExact(m.context(), MemorySegment.ofAddress(pollFunction), go);
                }
            } catch (Throwable t) {
                error.set(t);
            }
        });
        int freedWhileParked;
        boolean loadedAfterStop;
        try {
            assertTrue(running.await(10, TimeUnit.SECONDS));
            Thread.sleep(20);
            freedWhileParked = patcher.safepoint();
            loadedAfterStop = host.objects().contains(polling);
        } finally {
            go.set(ValueLayout.JAVA_LONG, 0, 0);
            mutatorThread.join();
        }
        if (error.get() != null) {
            throw error.get();
        }
        assertEquals(0, freedWhileParked, "the parked thread returns into g_polling_poll");
        assertTrue(loadedAfterStop);
        assertEquals(List.of(polling), patcher.retired());
        assertEquals(1, patcher.safepoint(), "freed once the thread is gone");
        assertFalse(host.objects().contains(polling));
        assertEquals(List.of(), failures);
    }
}
