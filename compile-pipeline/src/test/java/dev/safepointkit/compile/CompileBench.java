package dev.safepointkit.compile;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.patch.CodePatcher;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The compile pipeline's in-process benchmark on the program scripts/GenerateCompileBench.java
 * writes: each round makes a fresh host, patcher and pipeline (libLLVM stays open, as in a running
 * VM) and times, from the first load to the first result of {@code entry(1)}, eager, lazy and lazy
 * with a warm cache; then, on the lazy program, redefining {@code f5} and calling {@code entry}
 * again, without the redefinition's own compile. Prints round 1 (a cold JVM), and of the rest (after
 * {@value #WARMUP} unmeasured lazy and warm-cache runs, as a running VM's JIT would have been) the
 * median wall time with its minimum and maximum and the median CPU time of the calling thread
 * (which a loaded machine disturbs far less than wall time), then where the last lazy round's
 * time went by phase. Run by scripts/bench-compile-pipeline.sh: {@code CompileBench DIR ROUNDS}.
 */
public final class CompileBench {
    /** Nanoseconds the calling thread has run on a CPU: the first field of Linux's {@code /proc/thread-self/schedstat}. */
    private static long cpuNanos() throws java.io.IOException {
        String stat = Files.readString(Path.of("/proc/thread-self/schedstat"));
        return Long.parseLong(stat.substring(0, stat.indexOf(' ')));
    }

    /** Unmeasured lazy and warm-cache runs after round 1, so that the JIT has compiled the loading code. */
    private static final int WARMUP = 20;

    private CompileBench() {}

    public static void main(String[] args) throws Throwable {
        Path dir = Path.of(args[0]);
        int rounds = Integer.parseInt(args[1]);
        byte[] prog = Files.readAllBytes(dir.resolve("prog.ll"));
        byte[] runtime = Files.readAllBytes(dir.resolve("runtime.ll"));
        byte[] f5 = """
                declare i64 @rt_mix(i64, i64)

                define i64 @f5(i64 %x) {
                entry:
                  %r = mul i64 %x, 3
                  ret i64 %r
                }
                """.getBytes(StandardCharsets.UTF_8);
        LlvmCompiler llvm = LlvmCompiler.open();
        Path cacheDir = Files.createTempDirectory("compile-bench-cache");
        String[] names = {"eager", "lazy", "lazy, warm cache", "redefine f5 and call (less its compile)", "  its compile",
            "  both (its compile included)"};
        List<List<double[]>> times = new ArrayList<>();
        for (int i = 0; i < names.length; i++) {
            times.add(new ArrayList<>());
        }
        String[] phases = new String[3];
        long expected = 0;
        for (int round = 0; round < rounds; round++) {
            if (round == 1) {
                // Round 1 showed a cold JVM; a running VM has compiled the loading code by the time it
                // loads a program again, so the lazy paths (cheap) run WARMUP times unmeasured first.
                for (int w = 0; w < WARMUP; w++) {
                    run(llvm, runtime, prog, 1, null, null);
                    run(llvm, runtime, prog, 2, new ObjectCache(cacheDir, Long.MAX_VALUE), null);
                }
            }
            for (int mode = 0; mode < 3; mode++) {
                ObjectCache cache = mode == 2 ? new ObjectCache(cacheDir, Long.MAX_VALUE) : null;
                if (mode == 2 && round == 0) {
                    run(llvm, runtime, prog, 2, cache, null);  // fills the cache
                }
                Result r = run(llvm, runtime, prog, mode, cache, mode == 1 ? f5 : null);
                times.get(mode).add(new double[] {r.first, r.firstCpu});
                phases[mode] = r.phases;
                if (mode == 1) {
                    times.get(3).add(new double[] {r.redefine, Double.NaN});
                    times.get(4).add(new double[] {r.compile, Double.NaN});
                    times.get(5).add(new double[] {r.redefine + r.compile, r.redefineCpu});
                }
                if (round == 0 && mode == 0) {
                    expected = r.result;
                } else if (mode != 1 && r.result != expected) {
                    throw new AssertionError(names[mode] + ": entry(1) = " + r.result + ", eager gave " + expected);
                }
            }
        }
        System.out.printf(Locale.ROOT, "%-42s %9s %30s %10s%n", "in process, ms", "round 1",
                "median of " + (rounds - 1) + " (min to max)", "CPU");
        for (int i = 0; i < names.length; i++) {
            List<double[]> t = times.get(i);
            double[] wall = t.subList(1, t.size()).stream().mapToDouble(x -> x[0]).sorted().toArray();
            double[] cpu = t.subList(1, t.size()).stream().mapToDouble(x -> x[1]).sorted().toArray();
            System.out.printf(Locale.ROOT, "%-42s %9.1f %14.1f (%5.1f to %6.1f) %10s%n", names[i], t.get(0)[0],
                    wall[wall.length / 2], wall[0], wall[wall.length - 1],
                    Double.isNaN(cpu[0]) ? "" : String.format(Locale.ROOT, "%.1f", cpu[cpu.length / 2]));
        }
        System.out.println("where the last round's time went, ms:");
        System.out.println("  lazy: " + phases[1]);
        System.out.println("  lazy, warm cache: " + phases[2]);
    }

    private record Result(double first, double firstCpu, double redefine, double redefineCpu, double compile, long result,
                          String phases) {}

    private static Result run(LlvmCompiler llvm, byte[] runtime, byte[] prog, int mode, ObjectCache cache, byte[] redefinition)
            throws Throwable {
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host);
             CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(() -> llvm).build()) {
            long start = System.nanoTime();
            long startCpu = cpuNanos();
            p.runtime("runtime.ll", runtime);
            if (mode == 0) {
                p.load("prog.ll", prog);
            } else {
                p.loadLazy("prog.ll", prog);
            }
            MethodHandle entry = host.downcall("entry", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
            long result = (long) entry.invokeExact(1L);
            double first = (System.nanoTime() - start) / 1e6;
            double firstCpu = (cpuNanos() - startCpu) / 1e6;
            String phases = p.stats().describePhases();
            double redefine = 0;
            double redefineCpu = 0;
            double compile = 0;
            if (redefinition != null) {
                long compiledBefore = p.stats().compileNanos();
                long t = System.nanoTime();
                long tCpu = cpuNanos();
                p.redefine("f5", "f5-v2.ll", redefinition);
                long changed = (long) entry.invokeExact(1L);
                long elapsed = System.nanoTime() - t;
                long elapsedCpu = cpuNanos() - tCpu;
                if (changed == result) {
                    throw new AssertionError("entry(1) did not change after f5 was redefined");
                }
                compile = (p.stats().compileNanos() - compiledBefore) / 1e6;
                redefine = elapsed / 1e6 - compile;
                redefineCpu = elapsedCpu / 1e6;
            }
            return new Result(first, firstCpu, redefine, redefineCpu, compile, result, phases);
        }
    }
}
