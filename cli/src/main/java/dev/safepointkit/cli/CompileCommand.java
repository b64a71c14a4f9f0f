package dev.safepointkit.cli;

import dev.safepointkit.compile.CompilePipeline;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code safepointkit compile}: LLVM IR or bitcode to objects through the compile pipeline, ahead
 * of time, as {@code run} would compile them eagerly: the runtime module first, inlinable into
 * every other file. Writes {@code DIR/NAME.o} for each file, {@code NAME} its file name without
 * {@code .ll} or {@code .bc}. Loads nothing (so the runtime's own symbols need not exist here).
 */
@Command(name = "compile", mixinStandardHelpOptions = true,
        description = {"Compile LLVM IR (.ll) or bitcode (.bc) to x86-64 objects through the compile pipeline.",
            "It runs default<O2>, then rewrite-statepoints-for-gc for GC'd functions; the runtime module is inlinable into each."})
final class CompileCommand implements Callable<Integer> {

    @Option(names = "--runtime", paramLabel = "FILE", description = "The runtime module: compiled too, and inlinable into every file.")
    Path runtime;

    @Option(names = "--out", paramLabel = "DIR", required = true, description = "Where the objects are written (NAME.o).")
    Path out;

    @Parameters(paramLabel = "FILE", arity = "1..*", description = "LLVM IR (.ll) or bitcode (.bc).")
    List<Path> files = new ArrayList<>();

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        for (Path file : runtime == null ? files : java.util.stream.Stream.concat(java.util.stream.Stream.of(runtime), files.stream()).toList()) {
            String name = file.getFileName() == null ? "" : file.getFileName().toString();
            if (!name.endsWith(".ll") && !name.endsWith(".bc")) {
                throw new ParameterException(spec.commandLine(), (file == runtime ? "--runtime " : "") + file
                        + ": not LLVM IR (.ll) or bitcode (.bc), which compile takes");
            }
        }
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new ParameterException(spec.commandLine(), "--out " + out + " is not a directory");
        }
        List<Path> all = new ArrayList<>();
        if (runtime != null) {
            all.add(runtime);
        }
        all.addAll(files);
        List<byte[]> sources = new ArrayList<>();
        for (Path file : all) {
            try {
                sources.add(InputFiles.readInput(file));
            } catch (IOException e) {
                System.err.println("safepointkit compile: " + file + ": " + InputFiles.describe(e));
                return SafepointKit.FAILED;
            }
        }
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            System.err.println("safepointkit compile: --out " + out + ": cannot create the directory: " + InputFiles.describe(e));
            return SafepointKit.FAILED;
        }
        try (JitHost host = new JitHost()) {
            CompilePipeline pipeline = CompilePipeline.builder(host).saveObjects(out).build();
            for (int i = 0; i < all.size(); i++) {
                String name = baseName(all.get(i));
                try {
                    if (i == 0 && runtime != null) {
                        pipeline.compileRuntime(name, sources.get(i));
                    } else {
                        pipeline.compile(name, sources.get(i));
                    }
                } catch (JitLoadException e) {
                    System.err.println("safepointkit compile: " + InputFiles.describeFailure(all.get(i), name, e.getMessage()));
                    return SafepointKit.FAILED;
                }
            }
            return 0;
        } catch (IOException e) {
            System.err.println("safepointkit compile: --out " + out + ": " + InputFiles.describe(e));
            return SafepointKit.FAILED;
        }
    }

    /** The file's name without {@code .ll} or {@code .bc}: the module's and its object's name. */
    static String baseName(Path file) {
        String name = file.getFileName().toString();
        return name.endsWith(".ll") || name.endsWith(".bc") ? name.substring(0, name.length() - 3) : name;
    }
}
