package dev.safepointkit.cli;

import dev.safepointkit.demo.BinaryTrees;
import dev.safepointkit.host.LlvmUnavailableException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code safepointkit demo}: binary-trees, compiled by LLVM with statepoints, on a semispace
 * copying collector that finds and fixes its roots through gc-roots. Prints the program's
 * output, checked line by line, then what the collector did. Exit status 1 when the output is
 * wrong or JIT code read a poisoned object.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Run binary-trees, compiled by LLVM with statepoints, on a copying collector built on gc-roots.",
            "Verifies its output and reports collections, frames walked, roots visited and pause times.",
            "Exit status: 0 verified, 1 wrong output or a failure, 2 a bad option, 3 a collection failed."})
final class DemoCommand implements Callable<Integer> {
    /** The largest semispace: two of them are reserved, and the second is filled at start. */
    static final int MAX_HEAP_MB = 4096;

    @Option(names = "--depth", paramLabel = "N", defaultValue = "16",
            description = "Maximum tree depth, 0 to " + BinaryTrees.MAX_DEPTH + " (default 16; below 6 runs depth 6).")
    int depth;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "2",
            description = "Mutator threads that build the short-lived trees, 1 to " + BinaryTrees.MAX_THREADS + " (default 2).")
    int threads;

    @Option(names = "--gc-stress", description = "Collect at every poll (use a small depth, 6 to 10).")
    boolean gcStress;

    @Option(names = "--heap-mb", paramLabel = "MB", defaultValue = "32",
            description = "Size of each of the two semispaces, 1 to " + MAX_HEAP_MB + " (default 32).")
    int heapMb;

    @Option(names = "--nested", description = "Nested runs of JIT frames on one stack: while each short-lived tree is live, "
            + "Java, called from the JIT code that built it, builds and checks another in JIT code.")
    boolean nested;

    @Option(names = "--gc-regs", description = "Run binary-trees compiled with llc -max-registers-for-gc-values=4 "
            + "-fixup-allow-gcptr-in-csr (bundled): GC pointers stay in callee-saved registers across calls, and the "
            + "collector finds them through each frame's unwind information.")
    boolean gcRegs;

    @Option(names = "--check-unwind", description = "Debug: cross-check every stack walk's frames against the process "
            + "unwinder (libgcc, through the JIT code's registered .eh_frame); a difference fails the collection.")
    boolean checkUnwind;

    @Option(names = "--compile", description = "Compile the IR at run time through libLLVM 19 instead of loading the bundled objects.")
    boolean compile;

    @Option(names = "--llvm-lib", paramLabel = "PATH",
            description = "With --compile: the libLLVM 19 to use. Without it: $SAFEPOINTKIT_LLVM_LIB, else what "
                    + "llvm-config-19 --libdir holds, else libLLVM.so.19.1 or libLLVM-19.so from the loader's path, "
                    + "else /usr/lib/llvm-19/lib/libLLVM.so.1.")
    Path llvmLibrary;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        check(depth >= 0 && depth <= BinaryTrees.MAX_DEPTH, "--depth " + depth, "0 to " + BinaryTrees.MAX_DEPTH);
        check(threads >= 1 && threads <= BinaryTrees.MAX_THREADS, "--threads " + threads, "1 to " + BinaryTrees.MAX_THREADS);
        check(heapMb >= 1 && heapMb <= MAX_HEAP_MB, "--heap-mb " + heapMb, "1 to " + MAX_HEAP_MB);
        if (llvmLibrary != null && !compile) {
            throw new ParameterException(spec.commandLine(), "--llvm-lib is only used with --compile");
        }
        if (gcRegs && compile) {
            throw new ParameterException(spec.commandLine(), "--gc-regs runs the bundled object; it does not combine with --compile");
        }
        BinaryTrees.Result result;
        try {
            result = BinaryTrees.run(new BinaryTrees.Options(depth, threads, gcStress, (long) heapMb << 20, compile,
                    Optional.ofNullable(llvmLibrary), nested, gcRegs, checkUnwind), System.out, System.err);
        } catch (LlvmUnavailableException e) {
            System.err.println("safepointkit demo: " + e.getMessage());
            return SafepointKit.FAILED;
        }
        System.out.println();
        System.out.println(result.summary());
        return result.verified() ? 0 : SafepointKit.FAILED;
    }

    private void check(boolean inRange, String given, String range) {
        if (!inRange) {
            throw new ParameterException(spec.commandLine(), given + " is out of range (" + range + ")");
        }
    }
}
