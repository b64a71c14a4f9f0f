package dev.safepointkit.demo;

import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.compile.CompilePipeline;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.roots.Mutator;
import java.io.PrintStream;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.HdrHistogram.Histogram;

/**
 * binary-trees (the Benchmarks Game program) run as LLVM-compiled code on the demo's copying
 * collector: the stretch tree, then for each depth from 4 to the maximum in steps of 2 that many
 * short-lived trees (split among the worker threads), and a long-lived tree held by a handle
 * throughout. Every line is checked against its closed form (a tree of depth d has 2^(d+1) - 1
 * nodes).
 */
public final class BinaryTrees {
    public static final int MIN_DEPTH = 4;

    /** The deepest tree a run accepts: 2^25 nodes, hundreds of megabytes live. */
    public static final int MAX_DEPTH = 24;
    /** The most mutator threads a run accepts. */
    public static final int MAX_THREADS = 64;

    /**
     * How to run: {@code compile} builds the IR with the LLVM bridge instead of loading the bundled
     * objects, through the libLLVM at {@code llvmLibrary} when given, else the one
     * {@link LlvmCompiler#open()} finds. Depths below {@code MIN_DEPTH + 2} run that depth. With
     * {@code nested}, each short-lived tree is checked while another is built and checked in a run
     * of JIT code that Java entered from inside an exit of the first (JIT, Java, JIT on one stack).
     * With {@code gcRegs}, the bundled binarytrees-gcregs.o runs: the same program compiled with
     * {@code llc -max-registers-for-gc-values=4 -fixup-allow-gcptr-in-csr}, which keeps GC pointers
     * in callee-saved registers across calls, so the walker finds them through every frame's
     * unwind plan. With {@code checkUnwind}, every walk is cross-checked against the process
     * unwinder.
     */
    public record Options(int depth, int threads, boolean gcStress, long semispaceBytes, boolean compile,
                          Optional<Path> llvmLibrary, boolean nested, boolean gcRegs, boolean checkUnwind) {
        public Options {
            if (gcRegs && compile) {
                throw new IllegalArgumentException("GC pointers in callee-saved registers come from the bundled object, not --compile");
            }
            if (depth < 0 || depth > MAX_DEPTH) {
                throw new IllegalArgumentException("depth " + depth + " (0 to " + MAX_DEPTH + ")");
            }
            if (threads < 1 || threads > MAX_THREADS) {
                throw new IllegalArgumentException("threads " + threads + " (1 to " + MAX_THREADS + ")");
            }
            if (llvmLibrary.isPresent() && !compile) {
                throw new IllegalArgumentException("a libLLVM path is only used when compiling");
            }
        }

        public Options(int depth, int threads, boolean gcStress, long semispaceBytes, boolean compile) {
            this(depth, threads, gcStress, semispaceBytes, compile, Optional.empty(), false, false, false);
        }
    }

    /**
     * What a run printed and measured. {@code verified}: every line matched and no bad object was
     * read. {@code crossChecks}: the runs of JIT frames the walker compared with the process
     * unwinder, -1 when the run did not ask for the check.
     */
    public record Result(List<String> lines, boolean verified, List<String> problems, long collections,
                         long framesWalked, long rootsVisited, long registerRootsAbove, long bytesCopied, Histogram pauses,
                         long nanos, long crossChecks) {

        public String summary() {
            return String.format("collections: %d, frames walked: %d, roots visited: %d (%d in callee-saved registers above"
                            + " the poll), copied: %.1f MB%n"
                            + "pause p50 %.3f ms, p99 %.3f ms, max %.3f ms; run %.2f s; output %s",
                    collections, framesWalked, rootsVisited, registerRootsAbove, bytesCopied / 1e6,
                    millis(pauses, 50), millis(pauses, 99), pauses.getTotalCount() == 0 ? 0.0 : pauses.getMaxValue() / 1e6,
                    nanos / 1e9, verified ? "verified" : "WRONG: " + String.join("; ", problems))
                    + (crossChecks < 0 ? "" : String.format("%nunwind cross-check: %d runs of JIT frames compared with the"
                            + " process unwinder", crossChecks));
        }

        private static double millis(Histogram h, double percentile) {
            return h.getTotalCount() == 0 ? 0.0 : h.getValueAtPercentile(percentile) / 1e6;
        }
    }

    private BinaryTrees() {}

    /** Runs the program; {@code out} gets its output lines, {@code progress} a line per finished depth. */
    public static Result run(Options options, PrintStream out, PrintStream progress) throws Exception {
        try {
            return runJit(options, out, progress);
        } catch (Exception | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static Result runJit(Options options, PrintStream out, PrintStream progress) throws Throwable {
        int maxDepth = Math.max(MIN_DEPTH + 2, options.depth());
        long start = System.nanoTime();
        // libLLVM is opened before the heap is made, so that a missing library costs nothing.
        LlvmCompiler llvm = !options.compile() ? null
                : options.llvmLibrary().isPresent() ? LlvmCompiler.open(options.llvmLibrary().get()) : LlvmCompiler.open();
        try (DemoRuntime runtime = new DemoRuntime(options.semispaceBytes(), 1, options.checkUnwind())) {
            if (llvm != null) {
                // The compile pipeline, as regen-fixtures.sh ran it for the bundled objects: the runtime's
                // allocation fast path inlined, then rewrite-statepoints-for-gc.
                CompilePipeline pipeline = CompilePipeline.builder(runtime.host()).llvm(() -> llvm).build();
                pipeline.runtimeLoaded("runtime", DemoRuntime.bundled("runtime.ll"));
                pipeline.load("binarytrees", DemoRuntime.bundled("binarytrees.ll"));
            } else {
                String object = options.gcRegs() ? "binarytrees-gcregs.o" : "binarytrees.o";
                runtime.load(object, DemoRuntime.bundled(object));
            }
            FunctionDescriptor treesShape = FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG);
            MethodHandle trees = runtime.downcall("trees", treesShape);
            runtime.nestInto(trees);
            MethodHandle shortLived = options.nested() ? runtime.downcall("trees_nested", treesShape) : trees;
            MethodHandle keep = runtime.downcall("keep_tree", FunctionDescriptor.ofVoid(
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
            MethodHandle checkKept = runtime.downcall("check_kept", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                    ValueLayout.ADDRESS, ValueLayout.ADDRESS));
            runtime.collectAtEveryPoll(options.gcStress());

            List<String> lines = new ArrayList<>();
            List<String> problems = new ArrayList<>();
            Mutator main = runtime.attach();
            try {
                MemorySegment handle = runtime.heap().handle(0);
                int stretch = maxDepth + 1;
                long check;
                try (var scope = main.enter()) {
                    check = (long) trees.invokeExact(main.context(), stretch, 1L);
                }
                emit(String.format("stretch tree of depth %d\t check: %d", stretch, check), check, nodes(stretch), lines, problems, out);

                try (var scope = main.enter()) {
                    keep.invokeExact(main.context(), maxDepth, handle);
                }
                for (int d = MIN_DEPTH; d <= maxDepth; d += 2) {
                    long iterations = 1L << (maxDepth - d + MIN_DEPTH);
                    check = runSplit(runtime, shortLived, d, iterations, options.threads());
                    emit(String.format("%d\t trees of depth %d\t check: %d", iterations, d, check), check,
                            iterations * nodes(d), lines, problems, out);
                    progress.printf("demo: depth %d of %d done, %d collections so far, %.2f s%n", d, maxDepth,
                            runtime.heap().collections(), (System.nanoTime() - start) / 1e9);
                }
                try (var scope = main.enter()) {
                    check = (long) checkKept.invokeExact(main.context(), handle);
                }
                emit(String.format("long lived tree of depth %d\t check: %d", maxDepth, check), check, nodes(maxDepth),
                        lines, problems, out);
            } finally {
                runtime.collectAtEveryPoll(false);
                runtime.detach(main);
            }
            problems.addAll(runtime.failures());
            SemispaceHeap heap = runtime.heap();
            return new Result(List.copyOf(lines), problems.isEmpty(), List.copyOf(problems), heap.collections(),
                    heap.framesWalked(), heap.rootsVisited(), heap.registerRootsAbove(), heap.bytesCopied(), heap.pauses(),
                    System.nanoTime() - start, options.checkUnwind() ? runtime.crossChecks() : -1);
        }
    }

    /** Nodes in a tree of depth {@code d}: the check of one such tree. */
    static long nodes(int d) {
        return (1L << (d + 1)) - 1;
    }

    private static void emit(String line, long check, long expected, List<String> lines, List<String> problems, PrintStream out) {
        lines.add(line);
        out.println(line);
        if (check != expected) {
            problems.add("\"" + line + "\": expected check " + expected);
        }
    }

    /** {@code iterations} trees of depth {@code d}, split over {@code threads} mutator threads. */
    private static long runSplit(DemoRuntime runtime, MethodHandle trees, int d, long iterations, int threads) throws Throwable {
        AtomicLong total = new AtomicLong();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            long share = iterations / threads + (t < iterations % threads ? 1 : 0);
            if (share == 0) {
                continue;
            }
            // Whatever fails on a worker, attaching and detaching included, is rethrown below.
            Thread worker = Thread.ofPlatform().name("binary-trees-" + t).start(() -> {
                Mutator m = null;
                try {
                    m = runtime.attach();
                    try (var scope = m.enter()) {
                        total.addAndGet((long) trees.invokeExact(m.context(), d, share));
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                } finally {
                    if (m != null) {
                        try {
                            runtime.detach(m);
                        } catch (Throwable e) {
                            failure.compareAndSet(null, e);
                        }
                    }
                }
            });
            workers.add(worker);
        }
        for (Thread w : workers) {
            w.join();
        }
        if (failure.get() != null) {
            throw failure.get();
        }
        return total.get();
    }
}
