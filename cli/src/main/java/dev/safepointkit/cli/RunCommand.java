package dev.safepointkit.cli;

import dev.safepointkit.compile.CompilePipeline;
import dev.safepointkit.compile.ObjectCache;
import dev.safepointkit.events.perf.JitdumpWriter;
import dev.safepointkit.events.perf.PerfMapWriter;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.LlvmUnavailableException;
import dev.safepointkit.patch.CodePatcher;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
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
 * {@code safepointkit run}: loads x86-64 objects, and LLVM IR or bitcode through the compile
 * pipeline, into the JIT host, in the order given, and calls one of their functions with 64-bit
 * integer arguments, printing its 64-bit result. A safepoint registry hears every load, so an
 * object whose stack maps it refuses is not loaded.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = {"Load LLVM objects (.o), IR (.ll) or bitcode (.bc) into the JIT host and call a function:"
            + " i64 arguments, i64 result.",
            "IR and bitcode are compiled through libLLVM 19 (default<O2>, then rewrite-statepoints-for-gc for GC'd functions).",
            "With --perf-map and --jitdump, perf can name the JIT frames (see scripts/perf-jit-demo.sh)."})
final class RunCommand implements Callable<Integer> {

    @Option(names = "--call", required = true, paramLabel = "FUNCTION", description = "The function to call.")
    String function;

    @Option(names = "--arg", paramLabel = "N", description = {"An i64 argument; repeat for more.",
        "Give exactly as many as the function takes: checked where a .ll or .bc file defines it;",
        "an object file does not say, so a function defined in one is called unchecked."})
    List<Long> arguments = new ArrayList<>();

    @Option(names = "--repeat", paramLabel = "N", defaultValue = "1",
            description = "Call it N times, 1 to 2147483647 (default 1).")
    int repeat;

    @Option(names = "--perf-map", description = "Write /tmp/perf-<pid>.map.")
    boolean perfMap;

    @Option(names = "--jitdump", paramLabel = "DIR", description = "Write DIR/jit-<pid>.dump for perf inject --jit.")
    Path jitdump;

    @Option(names = "--lazy", description = "Split .ll/.bc files per function; compile each on its first call.")
    boolean lazy;

    @Option(names = "--runtime", paramLabel = "FILE",
            description = "The runtime module (.ll or .bc): compiled once, and inlinable into every other compile.")
    Path runtime;

    @Option(names = "--cache", paramLabel = "DIR", description = "Keep compiled objects in DIR across runs.")
    Path cache;

    @Option(names = "--cache-limit", paramLabel = "SIZE",
            description = "Past SIZE bytes (suffix K, M or G for KiB, MiB, GiB), delete the cache's least recently used entries (default: no limit).")
    String cacheLimit;

    @Option(names = "--save-objects", paramLabel = "DIR", description = "Write each object the pipeline loads to DIR/NAME.o.")
    Path saveObjects;

    @Option(names = "--stats", description = {"Print on stderr: compiled N functions, cache hits H, misses M, compile ms C,"
        + " first result ms F (F from the first load, once the host is set up, to the first result)."})
    boolean stats;

    @Parameters(paramLabel = "FILE", arity = "1..*", description = "ELF relocatable objects (x86-64, .o), LLVM IR (.ll) or bitcode (.bc).")
    List<Path> objects = new ArrayList<>();

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (repeat < 1) {
            throw new ParameterException(spec.commandLine(), "--repeat " + repeat + " is out of range (1 to 2147483647)");
        }
        if (jitdump != null && Files.exists(jitdump) && !Files.isDirectory(jitdump)) {
            throw new ParameterException(spec.commandLine(), "--jitdump " + jitdump + " is not a directory");
        }
        List<byte[]> images = new ArrayList<>();
        for (Path object : objects) {
            try {
                images.add(InputFiles.read(object));
            } catch (IOException e) {
                System.err.println("safepointkit run: " + object + ": " + InputFiles.describe(e));
                return SafepointKit.FAILED;
            }
        }
        byte[] runtimeImage = null;
        if (runtime != null) {
            try {
                runtimeImage = InputFiles.read(runtime);
            } catch (IOException e) {
                System.err.println("safepointkit run: " + runtime + ": " + InputFiles.describe(e));
                return SafepointKit.FAILED;
            }
        }
        long limit = Long.MAX_VALUE;
        if (cacheLimit != null) {
            if (cache == null) {
                throw new ParameterException(spec.commandLine(), "--cache-limit needs --cache DIR");
            }
            limit = size(cacheLimit);
        }
        boolean compiles = runtime != null || objects.stream().anyMatch(RunCommand::isIr);
        if (!compiles && (lazy || cache != null || saveObjects != null)) {
            throw new ParameterException(spec.commandLine(), "--lazy, --cache and --save-objects apply to .ll and .bc files; none given");
        }
        PerfMapWriter map = null;
        JitdumpWriter dump = null;
        CodePatcher patcher = null;
        try (JitHost host = new JitHost()) {
            // As any host would: code whose safepoints cannot be registered is refused.
            host.addListener(new RegistryListener(new SafepointRegistry()));
            if (perfMap) {
                map = new PerfMapWriter();
                host.addListener(map);
            }
            if (jitdump != null) {
                Files.createDirectories(jitdump);
                dump = JitdumpWriter.inDirectory(jitdump);
                host.addListener(dump);
            }
            CompilePipeline pipeline = null;
            if (compiles) {
                CompilePipeline.Builder b = CompilePipeline.builder(host).saveObjects(saveObjects);
                if (cache != null) {
                    b.cache(new ObjectCache(cache, limit));
                }
                if (lazy) {
                    patcher = new CodePatcher(host);
                    b.patcher(patcher);
                }
                pipeline = b.build();
            }
            if (pipeline != null) {
                checkSignature(pipeline, runtimeImage, images);
            }
            // F of --stats counts from here: the host and the patcher are set up, nothing is loaded.
            long loadStart = System.nanoTime();
            if (runtimeImage != null) {
                pipeline.runtime(moduleName(runtime), runtimeImage);
            }
            for (int i = 0; i < objects.size(); i++) {
                Path file = objects.get(i);
                if (!isIr(file)) {
                    host.load(file.toString(), MemorySegment.ofArray(images.get(i)));
                } else if (lazy) {
                    pipeline.loadLazy(moduleName(file), images.get(i));
                } else {
                    pipeline.load(moduleName(file), images.get(i));
                }
            }
            MemoryLayout[] params = new MemoryLayout[arguments.size()];
            java.util.Arrays.fill(params, ValueLayout.JAVA_LONG);
            MethodHandle target = host.downcall(function, FunctionDescriptor.of(ValueLayout.JAVA_LONG, params))
                    .asSpreader(Object[].class, arguments.size());
            Object[] args = arguments.toArray();
            long result = 0;
            long start = System.nanoTime();
            long firstResult = 0;
            for (int i = 0; i < repeat; i++) {
                result = invoke(target, args);
                if (i == 0) {
                    firstResult = System.nanoTime();
                }
            }
            long elapsed = System.nanoTime() - start;
            if (stats) {
                CompilePipeline.Stats st = pipeline == null ? new CompilePipeline.Stats(0, 0, 0, 0) : pipeline.stats();
                System.err.printf(java.util.Locale.ROOT, "compiled %d functions, cache hits %d, misses %d, compile ms %.1f, first result ms %.1f%n",
                        st.functions(), st.cacheHits(), st.cacheMisses(), st.compileNanos() / 1e6, (firstResult - loadStart) / 1e6);
            }
            System.out.println(function + "(" + String.join(", ", arguments.stream().map(String::valueOf).toList()) + ") = " + result);
            if (repeat > 1) {
                System.out.printf("%d calls in %.1f ms%n", repeat, elapsed / 1e6);
            }
            return 0;
        } catch (JitLoadException | LlvmUnavailableException e) {
            System.err.println("safepointkit run: " + e.getMessage());
            return SafepointKit.FAILED;
        } catch (IOException e) {
            System.err.println("safepointkit run: " + (jitdump == null ? "" : jitdump + ": ") + InputFiles.describe(e));
            return SafepointKit.FAILED;
        } finally {
            if (patcher != null) {
                patcher.close();
            }
            if (dump != null) {
                dump.close();
            }
            if (map != null) {
                map.close();
            }
        }
    }

    /**
     * Where IR defines the function, its type says how many i64 arguments it takes: a call with
     * another count, or of a function that takes or returns anything but integers of up to 64
     * bits and pointers, would run on whatever the registers hold. An object file does not say,
     * so a function defined only in one is called unchecked.
     */
    private void checkSignature(CompilePipeline pipeline, byte[] runtimeImage, List<byte[]> images) throws Exception {
        List<Path> files = new ArrayList<>();
        List<byte[]> sources = new ArrayList<>();
        if (runtimeImage != null) {
            files.add(runtime);
            sources.add(runtimeImage);
        }
        for (int i = 0; i < objects.size(); i++) {
            if (isIr(objects.get(i))) {
                files.add(objects.get(i));
                sources.add(images.get(i));
            }
        }
        for (int i = 0; i < files.size(); i++) {
            CompilePipeline.Signature sig = pipeline.signature(moduleName(files.get(i)), sources.get(i), function).orElse(null);
            if (sig == null || !sig.defined()) {
                continue;
            }
            String where = function + " (" + files.get(i).getFileName() + ": " + sig.returnType() + " (" + String.join(", ",
                    sig.parameterTypes()) + (sig.varArgs() ? ", ..." : "") + "))";
            for (int p = 0; p < sig.parameterTypes().size(); p++) {
                if (!passesAsI64(sig.parameterTypes().get(p))) {
                    throw new ParameterException(spec.commandLine(), where + ": parameter " + (p + 1) + " is "
                            + sig.parameterTypes().get(p) + "; run passes i64 arguments only");
                }
            }
            if (!passesAsI64(sig.returnType())) {
                throw new ParameterException(spec.commandLine(), where + " returns " + sig.returnType()
                        + "; run prints an i64 result");
            }
            int wanted = sig.parameterTypes().size();
            if (sig.varArgs() ? arguments.size() < wanted : arguments.size() != wanted) {
                throw new ParameterException(spec.commandLine(), where + " takes " + (sig.varArgs() ? "at least " : "")
                        + wanted + " argument" + (wanted == 1 ? "" : "s") + "; " + arguments.size() + " given with --arg");
            }
            return;
        }
    }

    private static boolean passesAsI64(String type) {
        return type.equals("ptr") || type.matches("i([1-9]|[1-5][0-9]|6[0-4])");
    }

    /** Whether {@code file} goes through the compile pipeline: LLVM IR text or bitcode, by its name. */
    private static boolean isIr(Path file) {
        String name = file.getFileName() == null ? "" : file.getFileName().toString();
        return name.endsWith(".ll") || name.endsWith(".bc");
    }

    /**
     * A compiled module's name: the file's name without its directory, so that its objects (and
     * their cache keys, which see the name in the bitcode) do not depend on where the file lives.
     */
    private static String moduleName(Path file) {
        return file.getFileName().toString();
    }

    private static long invoke(MethodHandle target, Object[] args) throws Exception {
        try {
            return (long) target.invoke(args);
        } catch (Exception | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@code text} as a positive byte count: digits, optionally followed by K, M or G (powers of 1024). */
    private long size(String text) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("([0-9]{1,18})([KMG]?)").matcher(text);
        long n = m.matches() ? Long.parseLong(m.group(1)) : 0;
        int shift = !m.matches() ? 0 : switch (m.group(2)) {
            case "K" -> 10;
            case "M" -> 20;
            case "G" -> 30;
            default -> 0;
        };
        if (n <= 0 || n > Long.MAX_VALUE >> shift) {
            throw new ParameterException(spec.commandLine(), "--cache-limit " + text
                    + ": not a positive size (bytes, or a number followed by K, M or G)");
        }
        return n << shift;
    }
}
