package dev.safepointkit.compile;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.host.LlvmUnavailableException;
import dev.safepointkit.patch.CodePatcher;
import dev.safepointkit.patch.PatchException;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfFormatException;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.ToLongFunction;

/**
 * LLVM IR or bitcode to code a {@link JitHost} runs, the way a language VM or a REPL wants it:
 *
 * <ul>
 *   <li><b>Runtime module</b> ({@link #runtime}): compiled once into its own object; every later
 *       compile links in a copy of it whose definitions are available_externally, so the optimizer
 *       may inline its functions, and calls it does not inline go to the one compiled copy.</li>
 *   <li><b>Passes</b>: each compile runs {@link Settings#optimization} ({@code default<O2>}), then,
 *       when a function names a GC, {@link Settings#gcPasses} ({@code rewrite-statepoints-for-gc}).</li>
 *   <li><b>Eager</b> ({@link #load}): one object per module. <b>Lazy</b> ({@link #loadLazy}): the
 *       module is parsed once, its local symbols made global under names unique to it, every
 *       function declared with the {@link CodePatcher}; a function is cut out of the module (one
 *       function per module, global variables shared through one data module) and compiled on its
 *       first call, and its callers are relinked by the patcher.</li>
 *   <li><b>Inlining of compiled code</b>: the optimized IR of each function compiled alone is kept,
 *       and later compiles that call it link it in as available_externally. The pipeline records
 *       every such link as a dependency (whether or not the optimizer inlined it: fail closed), and
 *       {@link #redefine} recompiles every dependent, transitively.</li>
 *   <li><b>Edit and continue</b> ({@link #redefine}): a function of a lazily loaded module gets a
 *       new body from new IR through {@link CodePatcher#redefine}; the old code is retired and freed
 *       at the patcher's next safepoint.</li>
 *   <li><b>Object cache</b> ({@link ObjectCache}): an object's key is a SHA-256 of the module handed
 *       to the optimizer (its bitcode, after the runtime and inlined bodies are linked in), the
 *       triple, CPU and features, the passes and code generation options, the LLVM version and
 *       {@link #VERSION}. A manifest per source (keyed by a cheap fingerprint of its bytes, checked
 *       against the copy of them it carries, and by the runtime and the settings) names the objects
 *       made for it, so a warm start loads them without opening libLLVM or hashing the source; for
 *       an object given kept bodies of other functions it also names those bodies, and the object
 *       is loaded only while the same ones are offered (another source may define them otherwise
 *       now). The host reads stack maps from each loaded object, so cached objects register like fresh ones.</li>
 * </ul>
 *
 * <p>Threading: every method may be called from any thread. Lock order, outermost first: the
 * patcher's lock (a lazy compile runs under it, on the calling thread); the pipeline's {@code lock}
 * (every LLVM context, the unit table, the kept IR, the dependencies and the statistics); the host's
 * lock (loads). {@link #redefine} holds the patcher's lock ({@link CodePatcher#hold}) and then the
 * pipeline's across all its compiles and patches, which makes redefinitions run one at a time, and
 * a thread that calls a function not compiled yet, or a safepoint of the patcher, wait for a
 * redefinition to finish; a lazy compile or a load holding the pipeline's lock likewise holds up
 * the others' compiles. A {@link CacheStoreFailures} handler runs under the pipeline's lock (and,
 * for a lazy compile or a redefinition, the patcher's), on the compiling thread.
 */
public final class CompilePipeline implements AutoCloseable {
    /**
     * The kit's pipeline version, part of every cache key: bump it when the pipeline's output or
     * the cache's entry format changes, so that kits of two versions sharing a directory use
     * different keys instead of deleting each other's entries as damaged.
     */
    public static final String VERSION = "safepointkit-compile-pipeline 3";

    /**
     * What every compile runs.
     *
     * @param optimization the new-pass-manager pipeline run on every module, e.g. {@code default<O2>}
     * @param gcPasses run after {@code optimization} on modules with a function that names a GC,
     *     e.g. {@code rewrite-statepoints-for-gc}; blank for none
     * @param codegen the code generator's level and relocation model (its own passes are ignored)
     */
    public record Settings(String optimization, String gcPasses, LlvmCompiler.Options codegen) {
        /** {@code default<O2>}, then {@code rewrite-statepoints-for-gc} for GC'd modules, {@code -O2} PIC code. */
        public static final Settings DEFAULT = new Settings("default<O2>", "rewrite-statepoints-for-gc", LlvmCompiler.Options.DEFAULT);

        /**
         * Checks the pipeline is given.
         *
         * @param optimization a pipeline, not blank
         * @param gcPasses a pipeline, or blank for none
         * @param codegen the code generator's options
         * @throws IllegalArgumentException if {@code optimization} is blank
         */
        public Settings {
            if (optimization == null || optimization.isBlank()) {
                throw new IllegalArgumentException("the optimization pipeline is blank: give one, e.g. default<O0>");
            }
            gcPasses = gcPasses == null ? "" : gcPasses;
        }

        byte[] describe() {
            return (optimization + "\n" + gcPasses + "\n" + codegen.optLevel() + "\n" + codegen.pic() + "\n"
                    + LlvmCompiler.targetCpuAndFeatures()).getBytes(StandardCharsets.UTF_8);
        }
    }

    /**
     * Counts since the pipeline was made.
     *
     * @param functions functions made ready: defined by an object the pipeline loaded, compiled or taken from the cache
     * @param cacheHits objects taken from the cache: one per object the pipeline needed and found there (a
     *     function's, a lazy source's data, an eagerly compiled module's, the runtime's); kept IR and manifests
     *     are not counted
     * @param cacheMisses objects looked up in the cache, not found, and so compiled; without a cache 0
     * @param compileNanos time spent opening libLLVM, parsing, splitting, optimizing and emitting
     * @param phaseNanos wall nanoseconds per {@link Phase}, loading and declaring included
     * @param compiledFunctions functions defined by the objects libLLVM emitted for this pipeline (those
     *     taken from the cache not counted), whether loaded or not
     */
    public record Stats(int functions, int cacheHits, int cacheMisses, long compileNanos, Map<Phase, Long> phaseNanos,
                        int compiledFunctions) {
        /**
         * Copies the phases.
         *
         * @param functions functions made ready
         * @param cacheHits objects taken from the cache
         * @param cacheMisses objects looked up in the cache and compiled
         * @param compileNanos time spent in libLLVM
         * @param phaseNanos nanoseconds per phase; a phase left out took none
         * @param compiledFunctions functions in the objects libLLVM emitted
         */
        public Stats {
            phaseNanos = Map.copyOf(phaseNanos);
        }

        /**
         * Counts without a breakdown by phase.
         *
         * @param functions functions made ready
         * @param cacheHits objects taken from the cache
         * @param cacheMisses objects looked up in the cache and compiled
         * @param compileNanos time spent in libLLVM
         */
        public Stats(int functions, int cacheHits, int cacheMisses, long compileNanos) {
            this(functions, cacheHits, cacheMisses, compileNanos, Map.of(), 0);
        }

        /** {@return the phases that took time, as {@code phase ms, ...} in phase order} */
        public String describePhases() {
            StringBuilder out = new StringBuilder();
            for (Phase p : Phase.values()) {
                long n = phaseNanos.getOrDefault(p, 0L);
                if (n > 0) {
                    out.append(out.isEmpty() ? "" : ", ").append(p.name().toLowerCase(java.util.Locale.ROOT)).append(' ')
                            .append(String.format(java.util.Locale.ROOT, "%.1f", n / 1e6));
                }
            }
            return out.toString();
        }
    }

    /** Where a pipeline's time goes, as {@link Stats#phaseNanos} counts it. */
    public enum Phase {
        /** Opening libLLVM and binding its functions. */
        OPEN,
        /** Creating and freeing LLVM contexts. */
        CONTEXT,
        /** Parsing IR text or bitcode into modules. */
        PARSE,
        /** Walking and rewriting modules' globals: globalizing, listing, marking for inlining. */
        SHAPE,
        /** Cutting functions and the data out of a lazily loaded module. */
        SPLIT,
        /** Linking the runtime's copy and kept bodies into a module to compile. */
        LINK,
        /** Writing modules' bitcode and hashing it into cache keys. */
        KEY,
        /** Reading and writing the object cache, manifests included. */
        CACHE,
        /** The optimization pipeline. */
        OPTIMIZE,
        /** Code generation (with the GC passes before it). */
        EMIT,
        /** Loading objects into the host: relocation, stack maps, unwind tables, listeners. */
        LOAD,
        /** Declaring lazily loaded functions with the patcher. */
        DECLARE
    }

    /**
     * Hears of a cache store that failed, for a pipeline told to compile on without it
     * ({@link Builder#cacheStoreFailures}).
     */
    @FunctionalInterface
    public interface CacheStoreFailures {
        /**
         * A store failed; the entry is not in the cache (stores are all or nothing), so a later
         * lookup misses and compiles again. Called on the compiling thread, under the pipeline's
         * lock: it must not call the pipeline.
         *
         * @param entry what was being stored, e.g. {@code the object of prog.ll.step5}
         * @param cause the cache's exception
         * @throws RuntimeException to fail the compile after all
         */
        void storeFailed(String entry, IOException cause);
    }

    /** Opens libLLVM when a compile first needs it (a warm start may never). */
    @FunctionalInterface
    public interface LlvmOpener {
        /**
         * Opens the library.
         *
         * @return a compiler
         * @throws LlvmUnavailableException if there is none
         */
        LlvmCompiler open() throws LlvmUnavailableException;
    }

    private final JitHost host;
    private final CodePatcher patcher;
    private final LlvmOpener opener;
    private final Settings settings;
    private final ObjectCache cache;
    /** Null: a failed store fails the compile. */
    private final CacheStoreFailures cacheStoreFailures;
    /** Null: no lazily loaded function has a fallback. */
    private final ToLongFunction<String> lazyFallbacks;
    private final Path saveObjects;

    private final ReentrantLock lock = new ReentrantLock();
    /**
     * Runs in {@link #redefine} just before the patcher is asked to move the functions; for tests,
     * which set it before any other thread uses the pipeline.
     */
    Runnable beforePatching = () -> { };
    // Everything below is guarded by `lock`.
    private Llvm llvm;
    private Runtime runtime;
    private final Map<String, Unit> units = new HashMap<>();
    /** Optimized IR of functions compiled alone, offered to later compiles. */
    private final Map<String, byte[]> kept = new HashMap<>();
    /**
     * Functions whose object came from the cache: the cache key of their kept IR, read only when
     * a compile first offers it (a warm start that compiles nothing reads none).
     */
    private final Map<String, String> keptInCache = new HashMap<>();
    /**
     * With a cache, function -> the key of the kept IR offered for it now (read or not): it names
     * the body, so a manifest can say which bodies an object was given.
     */
    private final Map<String, String> keptKeys = new HashMap<>();
    /** Function -> the functions whose current object was given its body. */
    private final Map<String, Set<String>> inlinedBy = new HashMap<>();
    /** Functions given a body that no source has: code that inlined one is never written to a manifest. */
    private final Set<String> redefined = new java.util.HashSet<>();
    /** Lazy sources whose module is parsed: their cuts are dropped by {@link #close}. */
    private final List<LazySource> parsed = new ArrayList<>();
    private int functions;
    private int compiledFunctions;
    private int hits;
    private int misses;
    private long compileNanos;
    private final long[] phaseNanos = new long[Phase.values().length];

    private CompilePipeline(Builder b) {
        this.host = b.host;
        this.patcher = b.patcher;
        this.opener = b.opener;
        this.settings = b.settings;
        this.cache = b.cache;
        this.cacheStoreFailures = b.cacheStoreFailures;
        this.lazyFallbacks = b.lazyFallbacks;
        this.saveObjects = b.saveObjects;
    }

    /**
     * Starts a pipeline loading into {@code host}.
     *
     * @param host where compiled objects are loaded
     * @return a builder with the default settings, no patcher, no cache, {@link LlvmCompiler#open()}
     */
    public static Builder builder(JitHost host) {
        return new Builder(host);
    }

    /** Collects a pipeline's parts. Confined to the thread that builds. */
    public static final class Builder {
        private final JitHost host;
        private CodePatcher patcher;
        private LlvmOpener opener = LlvmCompiler::open;
        private Settings settings = Settings.DEFAULT;
        private ObjectCache cache;
        private CacheStoreFailures cacheStoreFailures;
        private ToLongFunction<String> lazyFallbacks;
        private Path saveObjects;

        private Builder(JitHost host) {
            this.host = host;
        }

        /**
         * The patcher of {@code host}, for lazy modules and redefinition.
         *
         * @param patcher the patcher whose stubs lazy functions get
         * @return this builder
         */
        public Builder patcher(CodePatcher patcher) {
            this.patcher = patcher;
            return this;
        }

        /**
         * Where libLLVM comes from.
         *
         * @param opener called once, on the first compile that needs LLVM
         * @return this builder
         */
        public Builder llvm(LlvmOpener opener) {
            this.opener = opener;
            return this;
        }

        /**
         * The passes and code generation options.
         *
         * @param settings what every compile runs
         * @return this builder
         */
        public Builder settings(Settings settings) {
            this.settings = settings;
            return this;
        }

        /**
         * The persistent cache.
         *
         * @param cache where objects are kept across runs; null for none
         * @return this builder
         */
        public Builder cache(ObjectCache cache) {
            this.cache = cache;
            return this;
        }

        /**
         * What a cache store that fails (a full disk, a cache directory taken away) does. By
         * default it fails the compile with an {@link IOException} naming the cache and the
         * entry; for a lazy compile that is a failed lazy compile, which continues into the
         * function's fallback ({@link #lazyFallbacks}) or, without one, halts the process (status
         * 70). With a handler, the handler is told and the compile goes on with the object it
         * made, loaded as usual and not cached: the cache is then only slower, never wrong, since
         * stores are all or nothing and a missing entry is compiled again. A handler that throws
         * fails the compile with what it threw. (Reads never fail a compile: an entry that cannot
         * be read is a miss, and is compiled again.)
         *
         * @param handler told of each failed store; null for the default
         * @return this builder
         */
        public Builder cacheStoreFailures(CacheStoreFailures handler) {
            this.cacheStoreFailures = handler;
            return this;
        }

        /**
         * Where a call of a lazily loaded function goes when the function's compile fails (its
         * source does not compile, its cache store fails without a {@link #cacheStoreFailures}
         * handler): {@code fallbacks} gives, for each function's name when its module is loaded,
         * the absolute address of a function with the same signature to continue into (an
         * interpreter entry, or one that reports the error to the language), or 0 for none; it is
         * called under the pipeline's lock, before anything of the module is kept (what it throws
         * fails the load with nothing declared), and must not call the pipeline. The failure is
         * reported to the patcher's failure handler either way, and the next call tries the
         * compile again (each call while it keeps failing pays a whole compile). A fallback must
         * stay callable for as long as the module's functions may be called, and one written as
         * an FFM upcall must catch what it throws: an exception leaving an upcall ends the JVM.
         * Without fallbacks (the default) a failed lazy compile halts the process after
         * reporting (status 70): the call has nowhere to go.
         *
         * @param fallbacks the fallback of each function by name, 0 for none; null for the default
         * @return this builder
         */
        public Builder lazyFallbacks(ToLongFunction<String> fallbacks) {
            this.lazyFallbacks = fallbacks;
            return this;
        }

        /**
         * A directory that receives a copy of every object the pipeline loads, as {@code NAME.o}.
         *
         * @param directory created if missing; null for none
         * @return this builder
         */
        public Builder saveObjects(Path directory) {
            this.saveObjects = directory;
            return this;
        }

        /** {@return the pipeline} */
        public CompilePipeline build() {
            return new CompilePipeline(this);
        }
    }

    /** The runtime: its source, the names it was globalized under, and its inline copy once made. */
    private static final class Runtime {
        final String name;
        final byte[] source;
        byte[] inlineCopy;
        private byte[] digest;

        Runtime(String name, byte[] source) {
            this.name = name;
            this.source = source;
        }

        /** The SHA-256 of the source, taken on first need: every manifest key holds it. */
        byte[] digest() {
            if (digest == null) {
                digest = ObjectCache.sha256().digest(source);
            }
            return digest;
        }
    }

    /** One function of a lazy source: cut on first need, recompiled when a body it was given changes. */
    private static final class Unit {
        final String function;
        final LazySource from;
        /** Whether the body comes from {@link #redefine}, not from {@code from}. */
        final boolean redefinition;
        /** A redefinition's module before optimization; null for a function cut from its source (cut again when needed). */
        byte[] bitcode;
        /** Functions whose kept IR this unit's current object was compiled with. */
        Set<String> inlined = Set.of();
        JitObject object;

        Unit(String function, LazySource from, boolean redefinition) {
            this.function = function;
            this.from = from;
            this.redefinition = redefinition;
        }
    }

    /** A module loaded lazily: parsed and globalized once, on first need, into its cuts; its manifest. */
    private final class LazySource {
        final String name;
        final byte[] source;
        final String manifestKey;
        final Manifest manifest;
        FunctionCuts cuts;

        LazySource(String name, byte[] source, String manifestKey, Manifest manifest) {
            this.name = name;
            this.source = source;
            this.manifestKey = manifestKey;
            this.manifest = manifest;
        }

        /** The cuts of the parsed and globalized module; the module itself lives only while they are made. Holds the lock. */
        FunctionCuts cuts() throws Throwable {
            if (cuts == null) {
                Llvm l = llvm();
                MemorySegment context = timed(Phase.CONTEXT, l::newContext);
                try {
                    MemorySegment module = timed(Phase.PARSE, () -> l.parse(context, name, source));
                    cuts = timed(Phase.SHAPE, () -> {
                        defaultTriple(l, module);
                        ModuleShapes.globalize(l, name, module, tagOf(source));
                        return new FunctionCuts(l, name, module);
                    });
                    parsed.add(this);
                } finally {
                    timed(Phase.CONTEXT, () -> {
                        l.disposeContext(context);
                        return null;
                    });
                }
            }
            return cuts;
        }

        /** The functions the module defines, in module order. */
        List<String> functions() throws Throwable {
            return cuts().definedFunctions();
        }
    }

    /**
     * Sets the runtime module: compiles it (or takes it from the cache) into one object, loads it,
     * and from now on links its inline copy into every compile. Call once, before the modules that
     * call it. Takes the pipeline's lock.
     *
     * @param name the module's name, also its object's
     * @param source LLVM IR text or bitcode
     * @return the loaded runtime object
     * @throws JitLoadException if it does not parse, compile or load
     * @throws IOException if the save directory fails, or the cache does and no
     *     {@link Builder#cacheStoreFailures} handler takes its failures
     * @throws IllegalStateException if a runtime was set already (a call that failed set none)
     */
    public JitObject runtime(String name, byte[] source) throws JitLoadException, IOException {
        lock.lock();
        try {
            return withRuntime(name, source, object -> loadObject(name, object));
        } finally {
            lock.unlock();
        }
    }

    /**
     * Sets the runtime module whose object the host has loaded already: one this pipeline compiled
     * from the same source (ahead of time, say, and bundled). Only its inline copy is used, for
     * the compiles from now on; nothing is compiled or loaded now. Call once, instead of
     * {@link #runtime}. Takes the pipeline's lock.
     *
     * @param name the module's name
     * @param source LLVM IR text or bitcode, the one the loaded object was compiled from
     * @throws IllegalStateException if a runtime was set already
     */
    public void runtimeLoaded(String name, byte[] source) {
        lock.lock();
        try {
            setRuntime(name, source);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Compiles a module into one object (or takes it from the cache) and loads it. Takes the
     * pipeline's lock.
     *
     * @param name the module's name, also its object's
     * @param source LLVM IR text or bitcode
     * @return the loaded object
     * @throws JitLoadException if it does not parse, compile or load
     * @throws IOException if the save directory fails, or the cache does and no
     *     {@link Builder#cacheStoreFailures} handler takes its failures
     */
    public JitObject load(String name, byte[] source) throws JitLoadException, IOException {
        lock.lock();
        try {
            return loadObject(name, objectOf(name, source.clone(), "eager", false));
        } finally {
            lock.unlock();
        }
    }

    /**
     * Compiles the runtime module without loading it (ahead of time: its callers' objects are
     * made with {@link #compile} and loaded elsewhere, after {@link #runtimeLoaded}). Call once,
     * instead of {@link #runtime}. Takes the pipeline's lock.
     *
     * @param name the module's name
     * @param source LLVM IR text or bitcode
     * @return the object's bytes, the same {@link #runtime} would load
     * @throws JitLoadException if it does not parse or compile
     * @throws IOException if the save directory fails, or the cache does and no
     *     {@link Builder#cacheStoreFailures} handler takes its failures
     * @throws IllegalStateException if a runtime was set already (a call that failed set none)
     */
    public byte[] compileRuntime(String name, byte[] source) throws JitLoadException, IOException {
        lock.lock();
        try {
            return withRuntime(name, source, object -> saved(name, object));
        } finally {
            lock.unlock();
        }
    }

    /**
     * Compiles a module into one object, as {@link #load} would, without loading it. Takes the
     * pipeline's lock.
     *
     * @param name the module's name
     * @param source LLVM IR text or bitcode
     * @return the object's bytes
     * @throws JitLoadException if it does not parse or compile
     * @throws IOException if the save directory fails, or the cache does and no
     *     {@link Builder#cacheStoreFailures} handler takes its failures
     */
    public byte[] compile(String name, byte[] source) throws JitLoadException, IOException {
        lock.lock();
        try {
            return saved(name, objectOf(name, source.clone(), "eager", false));
        } finally {
            lock.unlock();
        }
    }

    /** The object of a whole module: from the cache through its manifest, or compiled. Holds the lock. */
    private byte[] objectOf(String name, byte[] source, String mode, boolean isRuntime) throws JitLoadException, IOException {
        String manifestKey = cache == null ? null : manifestKey(mode, source);
        Optional<Manifest> warm = readManifest(manifestKey, source);
        if (warm.isPresent() && warm.get().dataKey.isPresent()) {
            Optional<byte[]> object = cached(warm.get().dataKey.get());
            if (object.isPresent()) {
                return object.get();
            }
        }
        long start = now();
        Compiled c = llvmWork(name, () -> {
            Llvm l = llvm();
            MemorySegment context = l.newContext();
            try {
                MemorySegment module = timed(Phase.PARSE, () -> l.parse(context, name, source));
                defaultTriple(l, module);
                if (isRuntime) {
                    ModuleShapes.globalize(l, name, module, tagOf(source));
                    MemorySegment copy = l.cloneOf(module);
                    ModuleShapes.offerForInlining(l, copy);
                    runtime.inlineCopy = l.bitcode(copy);
                    l.dispose(copy);
                }
                return compileModule(l, context, module, name, null, !isRuntime);
            } finally {
                l.disposeContext(context);
            }
        });
        compileNanos += now() - start;
        Manifest m = new Manifest(source);
        m.dataKey = Optional.ofNullable(c.key());
        writeManifest(manifestKey, m, name);
        return c.object();
    }

    /**
     * Loads a module lazily: declares each function it defines with the patcher, loads its global
     * variables (one data module), and compiles each function on its first call. With a warm
     * cache nothing is parsed. Takes the pipeline's lock, and releases it before it takes the patcher's.
     *
     * @param name the module's name; objects are named {@code NAME.FUNCTION} and {@code NAME.data}
     * @param source LLVM IR text or bitcode
     * @return the functions declared, in module order
     * @throws JitLoadException if it does not parse, a function is declared already (by another lazy
     *     module) or defined by the host (a loaded object's global, a runtime symbol), or the data
     *     does not load; a function refused so leaves none of the module's declared
     * @throws IOException if the save directory fails, or the cache does and no
     *     {@link Builder#cacheStoreFailures} handler takes its failures
     * @throws IllegalStateException if the pipeline has no patcher
     * @throws RuntimeException what the {@link Builder#lazyFallbacks} function throws; nothing of
     *     the module is declared then
     */
    public List<String> loadLazy(String name, byte[] source) throws JitLoadException, IOException {
        if (patcher == null) {
            throw new IllegalStateException("lazy loading needs a patcher (Builder.patcher)");
        }
        LazySource src;
        List<String> names;
        long[] fallbacks;
        Optional<byte[]> data;
        lock.lock();
        try {
            byte[] bytes = source.clone();
            // Without a cache there is no manifest to look up: not even its key is computed.
            String manifestKey = cache == null ? null : manifestKey("lazy", bytes);
            Optional<Manifest> warm = readManifest(manifestKey, bytes);
            src = new LazySource(name, bytes, manifestKey, warm.orElseGet(() -> new Manifest(bytes)));
            if (warm.isPresent()) {
                names = List.copyOf(warm.get().functions.keySet());
            } else {
                long start = now();
                names = llvmWork(name, src::functions);
                compileNanos += now() - start;
                for (String f : names) {
                    src.manifest.functions.put(f, new Manifest.Entry(Optional.empty(), Set.of(), Optional.empty()));
                }
            }
            for (String f : names) {
                if (units.containsKey(f)) {
                    throw new JitLoadException(name + ": defines '" + f + "', which " + units.get(f).from.name + " defined already");
                }
                // Refused here, before anything is kept, rather than by the declare of its turn,
                // after the functions before it were declared.
                if (host.defines(f)) {
                    throw new JitLoadException(name + ": defines '" + f + "', which the host defines already"
                            + " (a loaded object's global or a runtime symbol)");
                }
            }
            // A warm manifest says whether there is data; its object may still have been evicted.
            data = warm.isPresent() ? warm.get().dataKey.map(this::cached).orElse(Optional.of(NO_DATA)) : Optional.empty();
            if (data.isEmpty()) {
                long start = now();
                Optional<Compiled> made = llvmWork(name + ".data", () -> {
                    if (!src.cuts().definesData()) {
                        return Optional.<Compiled>empty();
                    }
                    return Optional.of(compileCut(src, null, null));
                });
                compileNanos += now() - start;
                src.manifest.dataKey = made.map(Compiled::key);
                data = Optional.of(made.map(Compiled::object).orElse(NO_DATA));
                writeManifest(manifestKey, src.manifest, name);
            }
            // Asked before anything is kept: a fallbacks function that throws leaves no function behind.
            fallbacks = new long[names.size()];
            if (lazyFallbacks != null) {
                for (int i = 0; i < names.size(); i++) {
                    fallbacks[i] = lazyFallbacks.applyAsLong(names.get(i));
                }
            }
            for (String f : names) {
                units.put(f, new Unit(f, src, false));
            }
        } finally {
            lock.unlock();
        }
        // Declared outside the pipeline's lock: the patcher's lock comes first (a lazy compile holds it).
        long declaring = now();
        for (int i = 0; i < names.size(); i++) {
            patcher.declare(names.get(i), this::compileLazily, fallbacks[i]);
        }
        declaring = now() - declaring;
        lock.lock();
        try {
            phaseNanos[Phase.DECLARE.ordinal()] += declaring;
        } finally {
            lock.unlock();
        }
        if (data.get() != NO_DATA) {
            lock.lock();
            try {
                loadObject(name + ".data", data.get());
            } finally {
                lock.unlock();
            }
        }
        return names;
    }

    /** Stands for "the source defines no global variable": there is no data object. */
    private static final byte[] NO_DATA = new byte[0];

    /** The patcher's lazy compiler: runs on the first call, under the patcher's lock. */
    private JitObject compileLazily(String function) throws Exception {
        lock.lock();
        try {
            Unit u = units.get(function);
            Manifest.Entry known = u.redefinition ? null : u.from.manifest.functions.get(function);
            if (u.bitcode == null && known != null && known.objectKey().isPresent() && !stale(known.inlined())
                    && givenTheSameBodies(known)) {
                Optional<byte[]> object = cached(known.objectKey().get());
                if (object.isPresent()) {
                    keepFromCache(function, known.objectKey().get());
                    dependOn(u, known.inlined());
                    return u.object = loadObject(u.from.name + "." + function, object.get());
                }
            }
            Compiled c = compileUnit(u);
            if (!u.redefinition && !stale(c.inlined())) {
                u.from.manifest.functions.put(function, new Manifest.Entry(Optional.ofNullable(c.key()), c.inlined(),
                        Optional.ofNullable(c.given())));
                writeManifest(u.from.manifestKey, u.from.manifest, u.from.name);
            }
            return u.object = loadObject(u.from.name + "." + function, c.object());
        } finally {
            lock.unlock();
        }
    }

    /** Whether code given these bodies no longer belongs to any source: one of them was redefined. Holds the lock. */
    private boolean stale(Set<String> inlined) {
        for (String f : inlined) {
            if (redefined.contains(f)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether the bodies offered now are those {@code known}'s object was given: another source
     * may define a function differently than in the run that compiled it. Holds the lock.
     */
    private boolean givenTheSameBodies(Manifest.Entry known) {
        if (known.inlined().isEmpty()) {
            return true;
        }
        Map<String, String> now = new java.util.TreeMap<>();
        for (String f : known.inlined()) {
            String k = keptKeys.get(f);
            if (k == null) {
                return false;  // not offered now: a compile now would not be given it
            }
            now.put(f, k);
        }
        return known.given().equals(Optional.of(givenKey(now)));
    }

    /** The key of the bodies given to a compile: each function's name and the key of its kept IR. */
    private static String givenKey(Map<String, String> keptKeyByFunction) {
        List<byte[]> parts = new ArrayList<>();
        parts.add("bodies given".getBytes(StandardCharsets.UTF_8));
        new java.util.TreeMap<>(keptKeyByFunction).forEach((f, k) -> {
            parts.add(f.getBytes(StandardCharsets.UTF_8));
            parts.add(k.getBytes(StandardCharsets.UTF_8));
        });
        return ObjectCache.key(parts);
    }

    /** Cuts (once) and compiles a unit with the bodies kept now; records what it was given. Holds the lock. */
    private Compiled compileUnit(Unit u) throws JitLoadException, IOException {
        long start = now();
        try {
            return llvmWork(u.function, () -> {
                Compiled c = u.redefinition ? compileBitcode(u.from.name + "." + u.function, u.bitcode, u, true)
                        : compileCut(u.from, u.function, u);
                dependOn(u, c.inlined());
                return c;
            });
        } finally {
            compileNanos += now() - start;
        }
    }

    private void dependOn(Unit u, Set<String> inlined) {
        for (String f : u.inlined) {
            inlinedBy.getOrDefault(f, new LinkedHashSet<>()).remove(u.function);
        }
        u.inlined = Set.copyOf(inlined);
        for (String f : inlined) {
            inlinedBy.computeIfAbsent(f, k -> new LinkedHashSet<>()).add(u.function);
        }
    }

    /**
     * Gives {@code function}, declared by a lazily loaded module, a new body from {@code source}, a
     * module that defines that one function (and may declare others, and hold data of its own).
     * Every compiled function that was given the old body for inlining is recompiled with the new
     * one, transitively; then the patcher points the function's stub and relinked call sites at the
     * new code, and each dependent's likewise. Calls already inside old code finish there; the old
     * objects are retired, and the patcher's {@link CodePatcher#safepoint} frees them. Redefinitions
     * run one at a time, and a lazy compile on another thread waits for one to finish: each holds
     * the patcher's lock throughout. Takes the patcher's lock, then the pipeline's.
     *
     * @param function a function a lazily loaded module defines
     * @param name the new module's name
     * @param source LLVM IR text or bitcode
     * @return the functions recompiled because they depended on the old body, in the order they were
     * @throws JitLoadException if the module does not parse, defines another function too, gives the
     *     function another type than its current definition's (callers compiled against that type
     *     would pass arguments the new code does not read), or does not compile or load
     * @throws PatchException if the patcher cannot move a call site
     * @throws IOException if the save directory fails, or the cache does and no
     *     {@link Builder#cacheStoreFailures} handler takes its failures
     * @throws IllegalArgumentException if {@code function} is not a function of a lazily loaded module
     * @throws IllegalStateException if the pipeline has no patcher
     */
    public List<String> redefine(String function, String name, byte[] source) throws JitLoadException, PatchException, IOException {
        if (patcher == null) {
            throw new IllegalStateException("redefinition needs a patcher (Builder.patcher): without one no function is loaded lazily");
        }
        Map<String, JitObject> replaced = new LinkedHashMap<>();
        // The patcher's lock first, as a lazy compile takes it before ours: no function is
        // compiled lazily between this redefinition's compiles and its patches, and the patches
        // are made, or the whole redefinition undone, while no one else has seen it.
        try (CodePatcher.Held _ = patcher.hold()) {
            lock.lock();
            try {
                Unit old = units.get(function);
                if (old == null) {
                    throw new IllegalArgumentException("'" + function + "' is not a function of a lazily loaded module");
                }
                byte[] bytes = source.clone();
                Unit fresh = new Unit(function, old.from, true);
                long start = now();
                fresh.bitcode = llvmWork(name, () -> {
                    Llvm l = llvm();
                    MemorySegment context = l.newContext();
                    try {
                        MemorySegment module = timed(Phase.PARSE, () -> l.parse(context, name, bytes));
                        defaultTriple(l, module);
                        ModuleShapes.globalize(l, name, module, tagOf(bytes));
                        List<String> defined = ModuleShapes.definedFunctions(l, module);
                        if (!defined.equals(List.of(function))) {
                            throw new JitLoadException(name + ": a redefinition of '" + function
                                    + "' must define that one function; it defines " + defined);
                        }
                        String now = l.functionTypeText(module, function);
                        String before = typeOf(l, old);
                        if (!now.equals(before)) {
                            throw new JitLoadException(name + ": the redefinition of '" + function + "' has type " + now
                                    + ", but its callers were compiled against " + before
                                    + "; a redefinition keeps the function's type");
                        }
                        return l.bitcode(module);
                    } finally {
                        l.disposeContext(context);
                    }
                });
                compileNanos += now() - start;
                fresh.inlined = old.inlined;
                fresh.object = old.object;
                Undo undo = new Undo(old, redefined.contains(function));
                units.put(function, fresh);
                redefined.add(function);
                // Every function whose code holds the old body, transitively. Their kept bodies hold
                // it too: none is offered to a compile from now on, so no recompile (the one before
                // it in the order below included) is given a body of the old code.
                Set<String> affected = new LinkedHashSet<>();
                Deque<String> work = new ArrayDeque<>();
                work.add(function);
                while (!work.isEmpty()) {
                    String f = work.poll();
                    if (affected.add(f)) {
                        work.addAll(new TreeSet<>(inlinedBy.getOrDefault(f, Set.of())));
                    }
                }
                for (String f : affected) {
                    undo.remember(f);
                    forgetKept(f);
                }
                // Each after the affected functions it was given (it is given their new bodies);
                // a cycle is broken at its first function, which then calls the others.
                Set<String> pending = new LinkedHashSet<>(affected);
                while (!pending.isEmpty()) {
                    String f = pending.stream().filter(g -> java.util.Collections.disjoint(units.get(g).inlined, pending))
                            .findFirst().orElse(pending.iterator().next());
                    pending.remove(f);
                    Unit u = units.get(f);
                    if (!f.equals(function) && u.object == null) {
                        continue;  // never compiled: its first compile will see the new body
                    }
                    try {
                        Compiled c = compileUnit(u);
                        JitObject loaded = loadObject(f.equals(function) ? name : u.from.name + "." + f, c.object());
                        replaced.put(f, loaded);
                        u.object = loaded;
                    } catch (Throwable t) {
                        undo.rollBack(t, replaced.values());
                        throw t;
                    }
                }
                // All or nothing: when the patcher refuses, it has moved no function, and nothing of
                // this redefinition stays here either.
                try {
                    beforePatching.run();
                    patcher.redefine(replaced);
                } catch (Throwable refused) {
                    undo.rollBack(refused, replaced.values());
                    throw refused;
                }
            } finally {
                lock.unlock();
            }
        }
        List<String> recompiled = new ArrayList<>(replaced.keySet());
        recompiled.remove(function);
        return recompiled;
    }

    /**
     * What a redefinition changes in the pipeline's tables before its compiles and the patcher's
     * move, kept to put back when one of them fails: the redefined function's unit, and of every
     * function whose code held the old body, its object, what it inlined and its kept IR. Used under
     * the lock, by the redefining thread only.
     */
    private final class Undo {
        private final Unit old;
        private final boolean wasRedefined;
        private final Map<String, Unit> units = new LinkedHashMap<>();
        private final Map<String, JitObject> objects = new HashMap<>();
        private final Map<String, Set<String>> inlined = new HashMap<>();
        private final Map<String, byte[]> keptIr = new HashMap<>();
        private final Map<String, String> keptInCacheKeys = new HashMap<>();
        private final Map<String, String> keptKeyByFunction = new HashMap<>();

        Undo(Unit old, boolean wasRedefined) {
            this.old = old;
            this.wasRedefined = wasRedefined;
        }

        /** Notes {@code f}'s state before the redefinition touches it. */
        void remember(String f) {
            Unit u = CompilePipeline.this.units.get(f);
            units.put(f, u);
            objects.put(f, u.object);
            inlined.put(f, u.inlined);
            keptIr.put(f, kept.get(f));
            keptInCacheKeys.put(f, keptInCache.get(f));
            keptKeyByFunction.put(f, keptKeys.get(f));
        }

        /**
         * Puts every table back as it was before the redefinition and unloads the objects it
         * loaded, which no call reaches (the patcher moved nothing to them); a failure to unload
         * one is added to {@code cause} as suppressed.
         */
        void rollBack(Throwable cause, Collection<JitObject> loaded) {
            for (Map.Entry<String, Unit> e : units.entrySet()) {
                String f = e.getKey();
                Unit u = e.getValue();
                u.object = objects.get(f);
                CompilePipeline.this.dependOn(u, inlined.get(f));
                putIfPresent(kept, f, keptIr.get(f));
                putIfPresent(keptInCache, f, keptInCacheKeys.get(f));
                putIfPresent(keptKeys, f, keptKeyByFunction.get(f));
            }
            CompilePipeline.this.units.put(old.function, old);
            if (!wasRedefined) {
                redefined.remove(old.function);
            }
            for (JitObject o : loaded) {
                try {
                    host.unload(o, true);
                } catch (JitLoadException | RuntimeException e) {
                    cause.addSuppressed(e);
                }
            }
        }
    }

    private static <V> void putIfPresent(Map<String, V> map, String key, V value) {
        if (value == null) {
            map.remove(key);
        } else {
            map.put(key, value);
        }
    }

    /** The type of {@code u}'s current definition, read in a context of its own. Holds the lock. */
    private static String typeOf(Llvm l, Unit u) throws Throwable {
        MemorySegment context = l.newContext();
        try {
            MemorySegment module = u.redefinition ? l.parse(context, u.from.name + "." + u.function, u.bitcode)
                    : u.from.cuts().cut(l, context, u.function);
            return l.functionTypeText(module, u.function);
        } finally {
            l.disposeContext(context);
        }
    }

    /**
     * The functions whose compiled code was given {@code function}'s body for inlining, and so are
     * recompiled when it is redefined. Takes the pipeline's lock.
     *
     * @param function a function name
     * @return a snapshot, empty when none
     */
    public Set<String> dependents(String function) {
        lock.lock();
        try {
            return Set.copyOf(inlinedBy.getOrDefault(function, Set.of()));
        } finally {
            lock.unlock();
        }
    }

    /**
     * Drops the globalized bitcode each lazy source keeps for cutting. Code already loaded keeps
     * running; a function compiled after this (a first call, a dependent's recompile) parses its
     * source again. Frees the kept target machines (a later compile makes new ones); no LLVM
     * context outlives a compile, so there is nothing else to free. Takes the pipeline's lock.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            for (LazySource s : parsed) {
                s.cuts = null;
            }
            parsed.clear();
            if (llvm != null) {
                llvm.closeMachines();
            }
        } finally {
            lock.unlock();
        }
    }

    /** {@return the counts so far} Takes the pipeline's lock. */
    public Stats stats() {
        lock.lock();
        try {
            Map<Phase, Long> phases = new java.util.EnumMap<>(Phase.class);
            for (Phase ph : Phase.values()) {
                phases.put(ph, phaseNanos[ph.ordinal()]);
            }
            return new Stats(functions, hits, misses, compileNanos, phases, compiledFunctions);
        } finally {
            lock.unlock();
        }
    }

    // ---- compiling ---------------------------------------------------------------------------------

    /**
     * An object and how it was made; {@code key} is null without a cache, {@code given} (the
     * {@link #givenKey} of the bodies in {@code inlined}) without one or when none was given.
     */
    private record Compiled(byte[] object, String key, Set<String> inlined, String given) {}

    /**
     * A function's type, read from IR.
     *
     * @param name the function
     * @param returnType its return type as IR spells it ({@code i64}, {@code ptr}, {@code void};
     *     {@code other} for aggregates and vectors)
     * @param parameterTypes its parameter types, spelled the same way
     * @param varArgs whether it takes variable arguments after them
     * @param defined whether the module defines it (else it only declares it)
     */
    public record Signature(String name, String returnType, List<String> parameterTypes, boolean varArgs, boolean defined) {
        /**
         * Checks and copies the components.
         *
         * @throws NullPointerException if a component is null
         */
        public Signature {
            java.util.Objects.requireNonNull(name);
            java.util.Objects.requireNonNull(returnType);
            parameterTypes = List.copyOf(parameterTypes);
        }
    }

    /**
     * The type of {@code function} in the IR or bitcode {@code source}, parsed on its own (not
     * loaded, compiled or kept). A caller that calls compiled code through a function descriptor
     * checks it against this first. Takes the pipeline's lock.
     *
     * @param name the module's name, for errors
     * @param source LLVM IR text or bitcode
     * @param function the function's name
     * @return its type; empty when the module neither defines nor declares it
     * @throws JitLoadException if LLVM cannot parse {@code source}
     * @throws LlvmUnavailableException if libLLVM cannot be opened
     */
    public Optional<Signature> signature(String name, byte[] source, String function)
            throws JitLoadException, LlvmUnavailableException {
        lock.lock();
        try {
            Llvm l = llvm();
            MemorySegment context = l.newContext();
            try {
                return Optional.ofNullable(l.signature(l.parse(context, name, source), function));
            } finally {
                l.disposeContext(context);
            }
        } catch (JitLoadException | LlvmUnavailableException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(name + ": reading the type of '" + function + "' failed: " + t, t);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Cuts {@code function} (or with null the data) out of {@code source} into a context of its
     * own and compiles it, with the runtime for a function. Holds the lock.
     */
    private Compiled compileCut(LazySource source, String function, Unit unit) throws Throwable {
        Llvm l = llvm();
        FunctionCuts cuts = source.cuts();
        String name = source.name + "." + (function == null ? "data" : function);
        MemorySegment context = timed(Phase.CONTEXT, l::newContext);
        try {
            MemorySegment module = timed(Phase.SPLIT, () -> cuts.cut(l, context, function));
            return compileModule(l, context, module, name, unit, function != null);
        } finally {
            timed(Phase.CONTEXT, () -> {
                l.disposeContext(context);
                return null;
            });
        }
    }

    /** Parses {@code bitcode} in a context of its own and compiles it. Holds the lock. */
    private Compiled compileBitcode(String name, byte[] bitcode, Unit unit, boolean withRuntime) throws Throwable {
        Llvm l = llvm();
        MemorySegment context = l.newContext();
        try {
            return compileModule(l, context, timed(Phase.PARSE, () -> l.parse(context, name, bitcode)), name, unit, withRuntime);
        } finally {
            l.disposeContext(context);
        }
    }

    /**
     * Links the runtime's inline copy (with {@code withRuntime}) and, for a lazy unit, the kept
     * bodies of the functions {@code module} calls into it, keys it, and takes it from the cache or
     * optimizes and emits it. A unit's optimized IR is kept for later compiles. Only a unit's
     * module is given kept bodies: only units are tracked as their dependents. The module is gone
     * afterwards. Holds the lock.
     */
    private Compiled compileModule(Llvm l, MemorySegment context, MemorySegment module, String name, Unit unit,
                                   boolean withRuntime) throws Throwable {
        String alone = unit == null ? null : unit.function;
        try {
            Set<String> inlined = new TreeSet<>();
            Map<String, String> givenKeys = new HashMap<>();
            if (unit != null) {
                for (String callee : timed(Phase.SHAPE, () -> ModuleShapes.declaredFunctions(l, module))) {
                    byte[] body = kept(callee);
                    if (body != null) {
                        MemorySegment m = timed(Phase.PARSE, () -> l.parse(context, callee, body));
                        ModuleShapes.offerForInlining(l, m);
                        l.sameTarget(m, module);
                        timed(Phase.LINK, () -> {
                            l.link(name + " with " + callee, module, m);
                            return null;
                        });
                        inlined.add(callee);
                        givenKeys.put(callee, keptKeys.get(callee));
                    }
                }
            }
            if (withRuntime && runtime != null) {
                MemorySegment m = timed(Phase.PARSE, () -> l.parse(context, runtime.name, runtimeInlineCopy(l)));
                l.sameTarget(m, module);
                timed(Phase.LINK, () -> {
                    l.link(name + " with " + runtime.name, module, m);
                    return null;
                });
            }
            // Without a cache nothing is looked up by key: the module's bitcode is not even written.
            String key = null;
            String given = cache == null || inlined.isEmpty() || givenKeys.containsValue(null) ? null : givenKey(givenKeys);
            if (cache != null) {
                String triple = l.triple(module);
                key = timed(Phase.KEY, () -> ObjectCache.key(List.of(VERSION.getBytes(StandardCharsets.UTF_8),
                        l.compiler.llvmVersion().getBytes(StandardCharsets.UTF_8), triple.getBytes(StandardCharsets.UTF_8),
                        settings.describe(), l.bitcode(module))));
                Optional<byte[]> hit = cached(key);
                if (hit.isPresent()) {
                    if (alone != null) {
                        keepFromCache(alone, key);
                    }
                    return new Compiled(hit.get(), key, inlined, given);
                }
                misses++;
            }
            boolean gc = ModuleShapes.usesGc(l, module);
            defaultTriple(l, module);
            LlvmCompiler.Machine machine = l.machine(l.triple(module), settings.codegen());
            timed(Phase.OPTIMIZE, () -> {
                machine.optimize(name, module, settings.optimization());
                return null;
            });
            byte[] ir = null;
            if (alone != null && ModuleShapes.inlinableAlone(l, module, alone)) {
                ir = l.bitcode(module);
                keptInCache.remove(alone);
                kept.put(alone, ir);
                if (key != null) {
                    keptKeys.put(alone, keptKey(key));
                } else {
                    keptKeys.remove(alone);
                }
            }
            byte[] object = timed(Phase.EMIT, () -> machine.emit(name, module,
                    gc && !settings.gcPasses().isBlank() ? settings.gcPasses() : null));
            compiledFunctions += functionsIn(name, object);
            if (cache != null) {
                long t = now();
                store(key, object, "the object of " + name);
                if (ir != null) {
                    store(keptKey(key), ir, "the kept IR of " + alone);
                }
                phaseNanos[Phase.CACHE.ordinal()] += now() - t;
            }
            return new Compiled(object, key, inlined, given);
        } finally {
            l.dispose(module);
        }
    }

    /** The functions {@code object} defines, as the host counts them when it loads it: symbols of code it holds. */
    private static int functionsIn(String name, byte[] object) throws JitLoadException {
        try {
            int n = 0;
            for (ElfSymbol s : ElfFile.parse(MemorySegment.ofArray(object)).symbols()) {
                if (s.isFunction() && !s.isUndefined()) {
                    n++;
                }
            }
            return n;
        } catch (ElfFormatException e) {
            throw new JitLoadException(name + ": libLLVM emitted an object that does not read as ELF: " + e.getMessage(), e);
        }
    }

    private byte[] runtimeInlineCopy(Llvm l) throws Throwable {
        if (runtime.inlineCopy == null) {
            // A warm start loaded the runtime's object without parsing it; a compile needs its copy now.
            MemorySegment context = l.newContext();
            try {
                MemorySegment module = timed(Phase.PARSE, () -> l.parse(context, runtime.name, runtime.source));
                defaultTriple(l, module);
                ModuleShapes.globalize(l, runtime.name, module, tagOf(runtime.source));
                ModuleShapes.offerForInlining(l, module);
                runtime.inlineCopy = l.bitcode(module);
            } finally {
                l.disposeContext(context);
            }
        }
        return runtime.inlineCopy;
    }

    private static void defaultTriple(Llvm l, MemorySegment module) throws Throwable {
        if (l.triple(module).isEmpty()) {
            l.triple(module, LlvmCompiler.DEFAULT_TRIPLE);
        }
    }

    private Llvm llvm() throws LlvmUnavailableException {
        if (llvm == null) {
            long t = now();
            llvm = new Llvm(opener.open());
            phaseNanos[Phase.OPEN.ordinal()] += now() - t;
        }
        return llvm;
    }

    /** The clock of {@link Stats#phaseNanos} and {@link Stats#compileNanos}: wall time. */
    private static long now() {
        return System.nanoTime();
    }

    /** Runs {@code work}, charging its time to {@code phase}. Holds the lock. */
    private <T> T timed(Phase phase, LlvmWork<T> work) throws Throwable {
        long t = now();
        try {
            return work.run();
        } finally {
            phaseNanos[phase.ordinal()] += now() - t;
        }
    }

    /** Work that calls libLLVM. */
    @FunctionalInterface
    private interface LlvmWork<T> {
        T run() throws Throwable;
    }

    /** Runs {@code work}, passing on the pipeline's own failures and wrapping libLLVM's. */
    private static <T> T llvmWork(String what, LlvmWork<T> work) throws JitLoadException, IOException {
        try {
            return work.run();
        } catch (JitLoadException | IOException | RuntimeException | Error e) {
            throw e;
        } catch (LlvmUnavailableException e) {
            // Where it looked and how to install it, as it says.
            throw new JitLoadException(what + ": " + e.getMessage(), e);
        } catch (Throwable t) {
            throw new JitLoadException(what + ": calling libLLVM failed: " + t, t);
        }
    }

    // ---- loading, the cache and its manifests --------------------------------------------------------

    /** What is done with the runtime's object once it is made. */
    private interface RuntimeObjectUse<T> {
        T apply(byte[] object) throws JitLoadException, IOException;
    }

    /**
     * Sets the runtime, makes its object and hands it to {@code use}; when any of that fails the
     * runtime is not set after all, so later compiles do not link a runtime that did not compile,
     * and the call may be made again. Holds the lock.
     */
    private <T> T withRuntime(String name, byte[] source, RuntimeObjectUse<T> use) throws JitLoadException, IOException {
        setRuntime(name, source);
        try {
            return use.apply(objectOf(name, runtime.source, "runtime", true));
        } catch (Throwable t) {
            runtime = null;
            throw t;
        }
    }

    /** Holds the lock. */
    private void setRuntime(String name, byte[] source) {
        if (runtime != null) {
            throw new IllegalStateException("the runtime is set already (" + runtime.name + ")");
        }
        runtime = new Runtime(name, source.clone());
    }

    private JitObject loadObject(String name, byte[] object) throws JitLoadException, IOException {
        saved(name, object);
        long t = now();
        JitObject loaded = host.load(name, MemorySegment.ofArray(object));
        phaseNanos[Phase.LOAD.ordinal()] += now() - t;
        functions += loaded.functions().size();
        return loaded;
    }

    /** Writes {@code object} to the save directory, when there is one; returns it. */
    private byte[] saved(String name, byte[] object) throws IOException {
        if (saveObjects != null) {
            Files.createDirectories(saveObjects);
            // A name is not a path: nothing is written outside the directory.
            Files.write(saveObjects.resolve(name.replace('/', '_') + ".o"), object);
        }
        return object;
    }

    /** The cached object of {@code key}, counting a hit; empty without a cache or on a miss. */
    private Optional<byte[]> cached(String key) {
        Optional<byte[]> payload = cachedQuietly(key);
        if (payload.isPresent()) {
            hits++;
        }
        return payload;
    }

    /** The cached payload of {@code key}, not counted: kept IR and manifests are not objects. */
    private Optional<byte[]> cachedQuietly(String key) {
        if (cache == null) {
            return Optional.empty();
        }
        long t = now();
        try {
            return cache.get(key).payload();
        } catch (IOException e) {
            // An unreadable cache is a miss: the object is compiled again, never guessed.
            return Optional.empty();
        } finally {
            phaseNanos[Phase.CACHE.ordinal()] += now() - t;
        }
    }

    /** Offers {@code function}'s body to no later compile (it is being replaced). Holds the lock. */
    private void forgetKept(String function) {
        kept.remove(function);
        keptInCache.remove(function);
        keptKeys.remove(function);
    }

    /** Notes that {@code function}'s kept IR is in the cache beside its object {@code objectKey}. Holds the lock. */
    private void keepFromCache(String function, String objectKey) {
        kept.remove(function);
        keptInCache.put(function, keptKey(objectKey));
        keptKeys.put(function, keptKey(objectKey));
    }

    /** The kept IR of {@code function}, read from the cache on first need; null when there is none. Holds the lock. */
    private byte[] kept(String function) {
        String key = keptInCache.remove(function);
        if (key != null) {
            cachedQuietly(key).ifPresent(ir -> kept.put(function, ir));
        }
        return kept.get(function);
    }

    private static String keptKey(String objectKey) {
        return ObjectCache.key(List.of("kept IR of".getBytes(StandardCharsets.UTF_8), objectKey.getBytes(StandardCharsets.UTF_8)));
    }

    /**
     * The key of a source's manifest: a SHA-256 of the mode, the settings, the libLLVM file and the
     * runtime's SHA-256 (taken once per pipeline), and of the source only its length and two CRCs.
     * A warm start thus never runs a cryptographic hash over a large source; the manifest carries
     * the source's bytes, so two sources whose CRCs collide share a key but never a manifest
     * ({@link Manifest#decode} refuses the other's, which is then a miss and is written over).
     */
    private String manifestKey(String mode, byte[] source) {
        return ObjectCache.key(List.of(("manifest " + mode).getBytes(StandardCharsets.UTF_8), VERSION.getBytes(StandardCharsets.UTF_8),
                LlvmFingerprint.current(), settings.describe(), runtime == null ? new byte[0] : runtime.digest(),
                fingerprint(source)));
    }

    /** The source's length, CRC-32C and CRC-32: cheap to take, and checked by the manifest's copy of the source. */
    static byte[] fingerprint(byte[] source) {
        java.util.zip.CRC32C c = new java.util.zip.CRC32C();
        c.update(source);
        java.util.zip.CRC32 d = new java.util.zip.CRC32();
        d.update(source);
        return java.nio.ByteBuffer.allocate(16).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(source.length)
                .putInt((int) c.getValue()).putInt((int) d.getValue()).array();
    }

    /** The manifest of {@code source} under {@code key}; empty without a cache, on a miss, or when it describes another source. */
    private Optional<Manifest> readManifest(String key, byte[] source) {
        if (cache == null) {
            return Optional.empty();
        }
        try {
            return cachedQuietly(key).map(payload -> Manifest.decode(payload, source));
        } catch (IllegalArgumentException e) {
            // A manifest that cannot be read is no manifest: everything is looked up or compiled again.
            return Optional.empty();
        }
    }

    private void writeManifest(String key, Manifest m, String source) throws IOException {
        if (cache != null && m.encodable()) {
            long t = now();
            store(key, m.encode(), "the manifest of " + source);
            phaseNanos[Phase.CACHE.ordinal()] += now() - t;
        }
    }

    /** Puts {@code payload} in the cache; a failure fails the compile or goes to the handler. Holds the lock. */
    private void store(String key, byte[] payload, String entry) throws IOException {
        try {
            cache.put(key, payload);
        } catch (IOException e) {
            if (cacheStoreFailures == null) {
                throw new IOException("the cache in " + cache.directory() + " could not store " + entry + ": " + e, e);
            }
            cacheStoreFailures.storeFailed(entry, e);
        }
    }

    /** Eight hex digits of the source's SHA-256: the suffix of its globalized local names. */
    private static String tagOf(byte[] source) {
        return HexFormat.of().formatHex(ObjectCache.sha256().digest(source), 0, 4);
    }
}
