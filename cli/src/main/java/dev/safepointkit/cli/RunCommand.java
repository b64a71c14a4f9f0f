package dev.safepointkit.cli;

import dev.safepointkit.compile.CompilePipeline;
import dev.safepointkit.compile.ObjectCache;
import dev.safepointkit.events.LoadedSymbol;
import dev.safepointkit.events.perf.JitdumpWriter;
import dev.safepointkit.events.perf.PerfMapWriter;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.host.LlvmUnavailableException;
import dev.safepointkit.patch.CodePatcher;
import dev.safepointkit.patch.PatchException;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfFormatException;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code safepointkit run}: loads x86-64 objects, and LLVM IR or bitcode through the compile
 * pipeline, into the JIT host, each after the inputs that define what it refers to (whatever the
 * order given), and calls one of their functions with 64-bit integer arguments, printing its
 * 64-bit result. A safepoint registry hears every load, so an object whose stack maps it refuses
 * is not loaded.
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
        + " first result ms F.",
        "N: functions libLLVM compiled in this run (0 when the cache had every object); H, M: objects found in the cache,"
        + " and looked up there but missing (so compiled), one count per object needed; C: milliseconds in libLLVM;"
        + " F: milliseconds from the first load, once the host is set up, to the first result."})
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
        if (runtime != null && !isIr(runtime)) {
            throw new ParameterException(spec.commandLine(), "--runtime " + runtime
                    + ": not LLVM IR (.ll) or bitcode (.bc), which the runtime module must be; give an object (.o) as a FILE");
        }
        for (Path object : objects) {
            String file = object.getFileName() == null ? "" : object.getFileName().toString();
            if (!isIr(object) && !file.endsWith(".o") && Files.isRegularFile(object)) {
                throw new ParameterException(spec.commandLine(), object
                        + ": not an object (.o), LLVM IR (.ll) or bitcode (.bc), as its name must say");
            }
        }
        checkDirectoryOption("--jitdump", jitdump);
        checkDirectoryOption("--cache", cache);
        checkDirectoryOption("--save-objects", saveObjects);
        List<byte[]> images = new ArrayList<>();
        for (Path object : objects) {
            try {
                images.add(InputFiles.readInput(object));
            } catch (IOException e) {
                System.err.println("safepointkit run: " + object + ": " + InputFiles.describe(e));
                return SafepointKit.FAILED;
            }
        }
        byte[] runtimeImage = null;
        if (runtime != null) {
            try {
                runtimeImage = InputFiles.readInput(runtime);
            } catch (IOException e) {
                System.err.println("safepointkit run: --runtime " + runtime + ": " + InputFiles.describe(e));
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
        if (!createDirectory("--jitdump", jitdump) || !createDirectory("--cache", cache)
                || !createDirectory("--save-objects", saveObjects)) {
            return SafepointKit.FAILED;
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
                try {
                    dump = JitdumpWriter.inDirectory(jitdump);
                } catch (IOException e) {
                    System.err.println("safepointkit run: --jitdump " + jitdump + ": " + InputFiles.describe(e));
                    return SafepointKit.FAILED;
                }
                host.addListener(dump);
            }
            CompilePipeline pipeline = null;
            if (compiles) {
                CompilePipeline.Builder b = CompilePipeline.builder(host).saveObjects(saveObjects);
                if (cache != null) {
                    try {
                        b.cache(new ObjectCache(cache, limit));
                    } catch (IOException e) {
                        System.err.println("safepointkit run: --cache " + cache + ": " + InputFiles.describe(e));
                        return SafepointKit.FAILED;
                    }
                }
                if (lazy) {
                    patcher = new CodePatcher(host, null, RunCommand::lazyCompileFailed);
                    b.patcher(patcher);
                }
                pipeline = b.build();
            }
            if (pipeline != null) {
                checkSignature(pipeline, runtimeImage, images);
            }
            // F of --stats counts from here: the host and the patcher are set up, nothing is loaded.
            long loadStart = System.nanoTime();
            List<String> declared = loadAll(host, pipeline, runtimeImage, images);
            if (host.address(function).isEmpty()) {
                throw new ParameterException(spec.commandLine(), "--call " + function + ": no input defines it; "
                        + definedFunctions(host, declared));
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
                        st.compiledFunctions(), st.cacheHits(), st.cacheMisses(), st.compileNanos() / 1e6, (firstResult - loadStart) / 1e6);
            }
            System.out.println(function + "(" + String.join(", ", arguments.stream().map(String::valueOf).toList()) + ") = " + result);
            if (repeat > 1) {
                System.out.printf("%d calls in %.1f ms%n", repeat, elapsed / 1e6);
            }
            return 0;
        } catch (InputFailure e) {
            System.err.println("safepointkit run: " + e.getMessage());
            return SafepointKit.FAILED;
        } catch (JitLoadException | LlvmUnavailableException e) {
            System.err.println("safepointkit run: " + InputFiles.firstLine(e.getMessage()));
            return SafepointKit.FAILED;
        } catch (IOException e) {
            System.err.println("safepointkit run: " + InputFiles.describe(e));
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

    /** A directory option that names an existing file: a usage error, as no run could use it. */
    private void checkDirectoryOption(String option, Path directory) {
        if (directory != null && Files.exists(directory) && !Files.isDirectory(directory)) {
            throw new ParameterException(spec.commandLine(), option + " " + directory + " is not a directory");
        }
    }

    /** Creates a directory option's directory (null: none), or says on stderr why not; whether it exists now. */
    private static boolean createDirectory(String option, Path directory) {
        if (directory == null) {
            return true;
        }
        try {
            Files.createDirectories(directory);
            return true;
        } catch (IOException e) {
            System.err.println("safepointkit run: " + option + " " + directory + ": cannot create the directory: " + InputFiles.describe(e));
            return false;
        }
    }

    /**
     * A lazy compile that failed, reported from the thread whose call reached the stub: that call
     * cannot be returned an error (JIT code called the stub), so the run ends here, with one line
     * and the status of a failure while running, as a load that fails up front would.
     */
    private static void lazyCompileFailed(Throwable failure) {
        String why = failure instanceof PatchException && failure.getCause() != null
                ? failure.getMessage() : "lazy compile failed: " + SafepointKit.describe(failure);
        System.out.flush();
        System.err.println("safepointkit run: " + InputFiles.firstLine(why));
        System.err.flush();
        Runtime.getRuntime().halt(SafepointKit.FAILED);
    }

    /** An input that cannot be loaded, with its message ready to print. */
    private static final class InputFailure extends Exception {
        private static final long serialVersionUID = 1L;

        InputFailure(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** One input to load: an object (a .o file, or compiled from IR), or a source to load lazily. */
    private static final class Input {
        final Path file;
        final String name;
        final byte[] object;
        final byte[] lazySource;
        final Set<String> defines = new LinkedHashSet<>();
        final Set<String> needs = new LinkedHashSet<>();
        /** Inputs that must load first: they define what this one refers to. */
        final Set<Input> after = new LinkedHashSet<>();
        /** Inputs that should load first, if that leaves an order: a symbol no object defines may be their stub. */
        final Set<Input> preferAfter = new LinkedHashSet<>();

        Input(Path file, String name, byte[] object, byte[] lazySource) {
            this.file = file;
            this.name = name;
            this.object = object;
            this.lazySource = lazySource;
        }
    }

    /**
     * Compiles every IR input, then loads everything in an order where each object comes after
     * the inputs that define what it refers to, so that the order of the files on the command
     * line does not matter. The host links one object at a time, resolving each undefined symbol
     * as the object loads; a symbol that no input defines is left to the host, which fails the
     * load naming the symbol and the object when nothing else defines it. A lazily loaded source
     * comes after the runtime (its data may refer to it), and an object that refers to a symbol no
     * object defines comes after every lazily loaded source (it may be one of their stubs).
     *
     * @return the functions declared lazily
     */
    private List<String> loadAll(JitHost host, CompilePipeline pipeline, byte[] runtimeImage, List<byte[]> images)
            throws InputFailure, ParameterException {
        List<Input> inputs = new ArrayList<>();
        Input runtimeInput = null;
        if (runtimeImage != null) {
            runtimeInput = new Input(runtime, moduleName(runtime),
                    compiled(runtime, () -> pipeline.compileRuntime(moduleName(runtime), runtimeImage)), null);
            inputs.add(runtimeInput);
        }
        for (int i = 0; i < objects.size(); i++) {
            Path file = objects.get(i);
            byte[] image = images.get(i);
            if (!isIr(file)) {
                inputs.add(new Input(file, file.toString(), image, null));
            } else if (lazy) {
                inputs.add(new Input(file, moduleName(file), null, image));
            } else {
                inputs.add(new Input(file, moduleName(file), compiled(file, () -> pipeline.compile(moduleName(file), image)), null));
            }
        }
        Map<String, Input> definers = new HashMap<>();
        List<Input> lazySources = new ArrayList<>();
        for (Input in : inputs) {
            if (in.object == null) {
                lazySources.add(in);
                continue;
            }
            try {
                for (ElfSymbol s : ElfFile.parse(MemorySegment.ofArray(in.object)).symbols()) {
                    if (s.name().isEmpty() || s.type() == ElfSymbol.STT_SECTION || s.type() == ElfSymbol.STT_FILE) {
                        continue;
                    }
                    if (s.isUndefined()) {
                        in.needs.add(s.name());
                    } else if (s.binding() != ElfSymbol.STB_LOCAL) {
                        in.defines.add(s.name());
                        definers.putIfAbsent(s.name(), in);
                    }
                }
            } catch (ElfFormatException e) {
                // Not an object the host can load: it says why, naming the file, in its turn.
            }
        }
        for (Input in : inputs) {
            if (in.object == null) {
                if (runtimeInput != null) {
                    in.after.add(runtimeInput);
                }
                continue;
            }
            for (String symbol : in.needs) {
                Input definer = definers.get(symbol);
                if (definer == null) {
                    in.preferAfter.addAll(lazySources);
                } else if (definer != in) {
                    in.after.add(definer);
                }
            }
        }
        List<String> declared = new ArrayList<>();
        Set<Input> loaded = new HashSet<>();
        List<Input> pending = new ArrayList<>(inputs);
        while (!pending.isEmpty()) {
            // An object the runtime needs (or the runtime itself) may refer to libc: it cannot wait
            // for the lazy sources that wait for the runtime, so the preference gives way.
            Input next = pending.stream().filter(in -> loaded.containsAll(in.after) && loaded.containsAll(in.preferAfter))
                    .findFirst().or(() -> pending.stream().filter(in -> loaded.containsAll(in.after)).findFirst())
                    .orElseThrow(() -> new InputFailure(cycle(pending, definers), null));
            if (next.object != null) {
                try {
                    host.load(next.name, MemorySegment.ofArray(next.object));
                } catch (JitLoadException e) {
                    throw failure(next.file, next.name, e);
                }
            } else {
                Input source = next;
                declared.addAll(compiled(next.file, () -> pipeline.loadLazy(source.name, source.lazySource)));
            }
            loaded.add(next);
            pending.remove(next);
        }
        return declared;
    }

    /** The inputs that wait for each other, and for what. */
    private static String cycle(List<Input> pending, Map<String, Input> definers) {
        List<String> parts = new ArrayList<>();
        for (Input in : pending) {
            for (String symbol : in.needs) {
                Input definer = definers.get(symbol);
                if (definer != null && definer != in && pending.contains(definer)) {
                    parts.add(in.file + " needs '" + symbol + "' from " + definer.file);
                }
            }
        }
        return "these inputs refer to each other's symbols (" + String.join("; ", parts)
                + "); objects are linked one at a time as they load, so no order resolves them: put them in one file";
    }

    /** Compiler work for one input file. */
    @FunctionalInterface
    private interface FileWork<T> {
        T run() throws JitLoadException, IOException, LlvmUnavailableException;
    }

    /** Runs {@code work} for {@code file}, its failures named by the file's path. */
    private <T> T compiled(Path file, FileWork<T> work) throws InputFailure {
        try {
            return work.run();
        } catch (JitLoadException e) {
            throw failure(file, moduleName(file), e);
        } catch (IOException e) {
            throw new InputFailure(ioFailure(e), e);
        } catch (LlvmUnavailableException e) {
            // Not the file's fault: where it looked and how to install it, as it says.
            throw new InputFailure(e.getMessage(), e);
        }
    }

    /** The place of an I/O failure while compiling: the cache or the save directory, else its own message. */
    private String ioFailure(IOException e) {
        String what = e instanceof java.nio.file.FileSystemException f && f.getFile() != null ? f.getFile() : "";
        if (saveObjects != null && what.startsWith(saveObjects.toString())) {
            return "--save-objects " + saveObjects + ": " + what + ": " + InputFiles.describe(e);
        }
        if (cache != null && what.startsWith(cache.toString())) {
            return "--cache " + cache + ": " + what + ": " + InputFiles.describe(e);
        }
        return (what.isEmpty() ? "" : what + ": ") + InputFiles.describe(e);
    }

    private static InputFailure failure(Path file, String name, JitLoadException e) {
        return new InputFailure(InputFiles.describeFailure(file, name, e.getMessage()), e);
    }

    /** What the inputs define that --call could name: the first 20 functions, in load order. */
    private static String definedFunctions(JitHost host, List<String> declared) {
        Set<String> names = new LinkedHashSet<>();
        for (JitObject o : host.objects()) {
            for (LoadedSymbol s : o.loaded().symbols()) {
                if (s.function() && s.global() && !s.name().contains(".spk.")) {
                    names.add(s.name());
                }
            }
        }
        for (String f : declared) {
            if (!f.contains(".spk.")) {
                names.add(f);
            }
        }
        if (names.isEmpty()) {
            return "they define no function";
        }
        List<String> list = new ArrayList<>(names);
        return "they define " + String.join(", ", list.subList(0, Math.min(20, list.size())))
                + (list.size() > 20 ? ", ... (" + list.size() + " in all)" : "");
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
            Path file = files.get(i);
            byte[] source = sources.get(i);
            CompilePipeline.Signature sig = compiled(file, () -> pipeline.signature(moduleName(file), source, function)).orElse(null);
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
