package dev.safepointkit.cli;

import dev.safepointkit.demo.BinaryTrees;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code safepointkit demo}: binary-trees, compiled by LLVM with statepoints, on a semispace
 * copying collector that finds and fixes its roots through gc-roots. Prints the program's
 * output, checked line by line, then what the collector did. Exit status 1 when the output is
 * wrong or JIT code read a poisoned object.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Run binary-trees (LLVM-compiled, with statepoints) on a copying collector built on gc-roots,",
            "verify its output, and report collections, frames walked, roots visited and pause times."})
final class DemoCommand implements Callable<Integer> {

    @Option(names = "--depth", paramLabel = "N", defaultValue = "16", description = "Maximum tree depth (default 16).")
    int depth;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "2",
            description = "Mutator threads that build the short-lived trees (default 2).")
    int threads;

    @Option(names = "--gc-stress", description = "Collect at every poll (use a small depth, 6 to 10).")
    boolean gcStress;

    @Option(names = "--heap-mb", paramLabel = "MB", defaultValue = "32", description = "Size of each semispace (default 32).")
    int heapMb;

    @Option(names = "--compile", description = "Compile the IR at run time through libLLVM instead of loading the bundled objects.")
    boolean compile;

    @Override
    public Integer call() throws Exception {
        BinaryTrees.Result result = BinaryTrees.run(
                new BinaryTrees.Options(depth, threads, gcStress, (long) heapMb << 20, compile), System.out, System.err);
        System.out.println();
        System.out.println(result.summary());
        return result.verified() ? 0 : 1;
    }
}
