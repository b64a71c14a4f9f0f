package dev.safepointkit.stress.patch;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.patch.CodePatcher;
import dev.safepointkit.patch.PatchException;
import dev.safepointkit.patch.Sled;
import dev.safepointkit.roots.SafepointCoordinator;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What patching costs and buys, on the fixtures of fixtures/patch/src.
 *
 * <ul>
 *   <li>{@code call}: one call of g from a native loop of {@value #CALLS} (loop_g, loop_static),
 *       per call: {@code stub} through g's stub ({@code call} to {@code jmp *slot(%rip)}),
 *       {@code relinked} after the site was rewritten into a direct call, {@code static} a direct
 *       call that llc linked itself (g_static, same object).</li>
 *   <li>{@code relink}: one relink or unlink of g: two aligned call sites rewritten, each with a
 *       checked atomic store through the code's writable alias; their membarrier SYNC_CORE is owed
 *       (paid before any unmap and at the next stop, and this patcher has neither).</li>
 *   <li>{@code relinkManySitesAtASafepoint}: relinking (or unlinking) the {@value #MANY_SITES}
 *       call sites of g in one function, compiled at set-up through libLLVM: the aligned ones
 *       while threads run (one barrier for all), the others at the stop that follows (one barrier
 *       for the stop); the stop has no mutators to wait for.</li>
 *   <li>{@code sledRewrite}: one whole-sled rewrite (into a call, or back to NOPs) at a
 *       safepoint: the stop itself (no mutators attached here) plus the checked write and the
 *       stop's one barrier.</li>
 *   <li>{@code emptySafepoint}: a safepoint with nothing to write or free, on the same patcher:
 *       the stop alone, which makes no barrier when nothing was written.</li>
 *   <li>{@code sledRetarget}: one retarget of a sled whose imm64 is 8-byte aligned: an atomic
 *       store while threads run, and its membarrier.</li>
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 10, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class PatchBenchmark {
    static final int CALLS = 1000;
    static final int MANY_SITES = 1000;

    private JitHost host;
    private CodePatcher patcher;
    private CodePatcher plainPatcher;
    private JitHost plainHost;
    private Arena arena;
    private Sled sled;
    private Sled alignedSled;
    private long one;
    private long two;
    private boolean flip;

    @Setup
    public void setUp() throws Exception {
        arena = Arena.ofShared();
        // Relinks: a patcher without safepoints, so only the two aligned sites move.
        plainHost = new JitHost();
        plainPatcher = compiledCaller(plainHost);
        byte[] v1 = PatchStress.fixture("g_v1");
        // Sleds: a coordinator with no mutators, so a stop costs only its own bookkeeping.
        SafepointCoordinator coordinator = new SafepointCoordinator(0);
        host = new JitHost();
        patcher = new CodePatcher(host, coordinator, Throwable::printStackTrace);
        JitObject spin = PatchStress.loadSpin(host, patcher, coordinator, arena, Throwable::printStackTrace,
                name -> host.load("g_v1.o", MemorySegment.ofArray(v1)));
        sled = patcher.sled(spin, 77, 16);
        alignedSled = patcher.sled(spin, 78, 16);
        one = host.address("mark_one").orElseThrow();
        two = host.address("mark_two").orElseThrow();
        patcher.callFromSled(alignedSled, one);
        if ((alignedSled.address() + 2) % 8 != 0) {
            throw new IllegalStateException("sled 78's imm64 is not 8-byte aligned");
        }
    }

    @TearDown
    public void tearDown() {
        host.close();
        patcher.close();
        plainHost.close();
        plainPatcher.close();
        arena.close();
    }

    /** lazy_caller.o in {@code host}, and a patcher without safepoints that has compiled g (g_v1.o) and relinked it. */
    static CodePatcher compiledCaller(JitHost host) throws Exception {
        CodePatcher patcher = new CodePatcher(host);
        byte[] v1 = PatchStress.fixture("g_v1");
        patcher.declare("g", name -> host.load("g_v1.o", MemorySegment.ofArray(v1)));
        host.load("lazy_caller.o", MemorySegment.ofArray(PatchStress.fixture("lazy_caller")));
        patcher.compile("g");
        return patcher;
    }

    /** The call benchmark's own state: g's call site in loop_g through the stub, relinked, or a static call. */
    @State(Scope.Thread)
    public static class Calls {
        @Param({"stub", "relinked", "static"})
        public String call;

        private JitHost host;
        private CodePatcher patcher;
        private MethodHandle loop;

        @Setup
        public void setUp() throws Exception {
            host = new JitHost();
            patcher = compiledCaller(host);
            FunctionDescriptor longLong = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);
            switch (call) {
                case "stub" -> {
                    patcher.unlink("g");
                    loop = host.downcall("loop_g", longLong);
                }
                case "relinked" -> loop = host.downcall("loop_g", longLong);
                case "static" -> loop = host.downcall("loop_static", longLong);
                default -> throw new IllegalArgumentException(call);
            }
            long expected = 2L * (CALLS - 1) * CALLS / 2;
            try {
                if ((long) loop.invokeExact((long) CALLS) != expected) {
                    throw new IllegalStateException(call + ": wrong result");
                }
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }

        @TearDown
        public void tearDown() {
            host.close();
            patcher.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(CALLS)
    public long call(Calls calls) throws Throwable {
        return (long) calls.loop.invokeExact((long) CALLS);
    }

    @Benchmark
    public Object relink() throws PatchException {
        flip = !flip;
        return flip ? plainPatcher.unlink("g") : plainPatcher.relink("g");
    }

    /** A function with {@value #MANY_SITES} calls of g, and a patcher with a coordinator (no mutators). */
    @State(Scope.Thread)
    public static class ManySites {
        private JitHost host;
        private CodePatcher patcher;
        private boolean flip;

        @Setup
        public void setUp() throws Exception {
            host = new JitHost();
            patcher = new CodePatcher(host, new SafepointCoordinator(0), Throwable::printStackTrace);
            byte[] v1 = PatchStress.fixture("g_v1");
            patcher.declare("g", name -> host.load("g_v1.o", MemorySegment.ofArray(v1)));
            StringBuilder ir = new StringBuilder("declare i64 @g(i64)\n\ndefine i64 @many(i64 %x) {\n  %s0 = add i64 %x, 0\n");
            for (int i = 0; i < MANY_SITES; i++) {
                ir.append("  %r").append(i).append(" = call i64 @g(i64 %s").append(i).append(")\n");
                ir.append("  %s").append(i + 1).append(" = add i64 %r").append(i).append(", 1\n");
            }
            ir.append("  ret i64 %s").append(MANY_SITES).append("\n}\n");
            byte[] object = LlvmCompiler.open().compile("many", ir.toString(), LlvmCompiler.Options.DEFAULT);
            host.load("many.o", MemorySegment.ofArray(object));
            patcher.compile("g");
            patcher.safepoint();
            if (patcher.relink("g").unchanged() != MANY_SITES) {
                throw new IllegalStateException("expected " + MANY_SITES + " relinked sites of g");
            }
        }

        @TearDown
        public void tearDown() {
            host.close();
            patcher.close();
        }
    }

    @Benchmark
    public Object relinkManySitesAtASafepoint(ManySites m) throws Exception {
        m.flip = !m.flip;
        Object r = m.flip ? m.patcher.unlink("g") : m.patcher.relink("g");
        m.patcher.safepoint();
        return r;
    }

    @Benchmark
    public boolean sledRewrite() throws Exception {
        flip = !flip;
        if (flip) {
            patcher.restoreSled(sled);
        } else {
            patcher.callFromSled(sled, one);
        }
        return flip;
    }

    @Benchmark
    public int emptySafepoint() throws Exception {
        return patcher.safepoint();
    }

    @Benchmark
    public boolean sledRetarget() throws Exception {
        flip = !flip;
        patcher.retargetSled(alignedSled, flip ? two : one);
        return flip;
    }
}
