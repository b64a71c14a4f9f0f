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
 * again, without the redefinition's own compile. Prints round 1 (a cold JVM) and the median of the
 * rest. Run by scripts/bench-compile-pipeline.sh: {@code CompileBench DIR ROUNDS}.
 */
public final class CompileBench {
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
        String[] names = {"eager", "lazy", "lazy, warm cache", "redefine f5 and call (less its compile)", "  its compile"};
        List<List<Double>> times = new ArrayList<>();
        for (int i = 0; i < names.length; i++) {
            times.add(new ArrayList<>());
        }
        long expected = 0;
        for (int round = 0; round < rounds; round++) {
            for (int mode = 0; mode < 3; mode++) {
                ObjectCache cache = mode == 2 ? new ObjectCache(cacheDir, Long.MAX_VALUE) : null;
                if (mode == 2 && round == 0) {
                    run(llvm, runtime, prog, 2, cache, null);  // fills the cache
                }
                double[] r = run(llvm, runtime, prog, mode, cache, mode == 1 ? f5 : null);
                times.get(mode).add(r[0]);
                if (mode == 1) {
                    times.get(3).add(r[1]);
                    times.get(4).add(r[2]);
                }
                if (round == 0 && mode == 0) {
                    expected = (long) r[3];
                } else if (mode != 1 && (long) r[3] != expected) {
                    throw new AssertionError(names[mode] + ": entry(1) = " + (long) r[3] + ", eager gave " + expected);
                }
            }
        }
        System.out.printf(Locale.ROOT, "%-42s %12s %16s%n", "in process, ms", "round 1", "median of " + (rounds - 1));
        for (int i = 0; i < names.length; i++) {
            List<Double> t = times.get(i);
            List<Double> rest = new ArrayList<>(t.subList(1, t.size()));
            rest.sort(null);
            System.out.printf(Locale.ROOT, "%-42s %12.1f %16.1f%n", names[i], t.get(0), rest.get(rest.size() / 2));
        }
    }

    /** {first result ms, redefine-and-call ms less its compile, the redefinition's compile ms, entry(1)}. */
    private static double[] run(LlvmCompiler llvm, byte[] runtime, byte[] prog, int mode, ObjectCache cache, byte[] redefinition)
            throws Throwable {
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host);
             CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(() -> llvm).build()) {
            long start = System.nanoTime();
            p.runtime("runtime.ll", runtime);
            if (mode == 0) {
                p.load("prog.ll", prog);
            } else {
                p.loadLazy("prog.ll", prog);
            }
            MethodHandle entry = host.downcall("entry", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
            long result = (long) entry.invokeExact(1L);
            double first = (System.nanoTime() - start) / 1e6;
            if (System.getenv("COMPILE_BENCH_PHASES") != null) {
                System.err.printf(Locale.ROOT, "mode %d first %.1f: %s%n", mode, first, p.stats().describePhases());
            }
            double redefine = 0;
            double compile = 0;
            if (redefinition != null) {
                long compiledBefore = p.stats().compileNanos();
                long t = System.nanoTime();
                p.redefine("f5", "f5-v2.ll", redefinition);
                long changed = (long) entry.invokeExact(1L);
                long elapsed = System.nanoTime() - t;
                if (changed == result) {
                    throw new AssertionError("entry(1) did not change after f5 was redefined");
                }
                compile = (p.stats().compileNanos() - compiledBefore) / 1e6;
                redefine = elapsed / 1e6 - compile;
            }
            return new double[] {first, redefine, compile, result};
        }
    }
}
