package dev.safepointkit.host;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventDispatcher;
import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.JitListenerException;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.events.LoadedSymbol;
import dev.safepointkit.events.SourceLine;
import dev.safepointkit.events.internal.Libc;
import dev.safepointkit.stackmap.CallSiteRecord;
import dev.safepointkit.stackmap.FunctionRecord;
import dev.safepointkit.stackmap.ObjectStackMaps;
import dev.safepointkit.stackmap.StackMap;
import dev.safepointkit.stackmap.StackMapFormatException;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfFormatException;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An in-process JIT host: loads LLVM's x86-64 ELF relocatable objects into executable memory,
 * links them, and tells its listeners what it loaded.
 *
 * <p>Undefined symbols resolve, in this order, to the embedder's runtime symbols
 * ({@link #defineRuntimeSymbol}), global symbols of objects already loaded, and the process
 * (libc and what the JVM has loaded). Per symbol the host keeps its definer, address and every
 * call site that refers to it ({@link #symbol}).
 *
 * <p>Threading: {@link #load}, {@link #unload} and {@link #defineRuntimeSymbol} are serialized by
 * the host's lock; listeners run on the loading thread, inside it. Lookups ({@link #address},
 * {@link #symbol}, {@link #objects}) never block and may run on any thread at any time.
 */
public final class JitHost implements AutoCloseable {
    private final JitEventDispatcher dispatcher = new JitEventDispatcher();
    private final AtomicLong nextKey = new AtomicLong(1);
    private final Map<Long, JitObject> objects = new ConcurrentHashMap<>();
    /** Global symbols of loaded objects: name -> defining object key. */
    private final Map<String, Long> definers = new ConcurrentHashMap<>();
    private final Map<String, Long> addresses = new ConcurrentHashMap<>();
    private final Map<String, Long> runtimeSymbols = new ConcurrentHashMap<>();
    /** Runtime symbols that stand for a function loaded objects may define: a stub and its bodies. */
    private final Set<String> indirect = ConcurrentHashMap.newKeySet();
    /** Runtime symbols defined with {@link #defineUpcall}: entry points into Java. */
    private final Set<String> upcalls = ConcurrentHashMap.newKeySet();
    /** Call sites per referenced symbol name. */
    private final Map<String, List<CallSite>> callSites = new ConcurrentHashMap<>();
    private final SymbolLookup process = Linker.nativeLinker().defaultLookup().or(SymbolLookup.loaderLookup());
    private final Object lock = new Object();

    /**
     * A host. Loaded code is double mapped (W^X: read + execute where it runs, read + write at
     * another address), which needs memfd_create; there is no fallback that maps code writable.
     *
     * @throws IllegalStateException if this system cannot create memory files
     */
    public JitHost() {
        if (MemoryFiles.FAILURE != null) {
            throw new IllegalStateException("the JIT host maps code twice from a memory file (memfd_create, Linux 3.17"
                    + " and glibc 2.27 or later) so that no page is ever writable and executable: " + MemoryFiles.FAILURE);
        }
    }

    /** Whether memory files work here: tried once per process. */
    private static final class MemoryFiles {
        static final String FAILURE = probe();

        private static String probe() {
            if (!Libc.hasMemfd()) {
                return "this libc has no memfd_create";
            }
            try {
                Libc.close(Libc.memfdCreate("safepointkit-probe", Libc.pageSize()));
                return null;
            } catch (Libc.NativeException e) {
                return e.getMessage();
            }
        }
    }

    /**
     * The dispatcher listeners are added to and removed from; safe from any thread.
     *
     * @return this host's dispatcher, the same one for the host's whole life
     */
    public JitEventDispatcher listeners() {
        return dispatcher;
    }

    /**
     * Adds {@code listener} to {@link #listeners()}: it hears of objects loaded and freed from now
     * on, not of those loaded already (a listener that needs them reads {@link #objects()}). Any
     * thread.
     *
     * @param listener called on the loading or unloading thread, inside the host's lock
     */
    public void addListener(JitEventListener listener) {
        dispatcher.add(listener);
    }

    /**
     * Makes {@code name} resolve to {@code address} for objects loaded from now on: a native
     * function, or an FFM upcall stub (Java's name for its entry point). Its owner must keep it alive while loaded code may call it.
     * Objects loaded before keep what they were linked to. Takes the host's lock.
     *
     * @param name the symbol name as objects refer to it, e.g. {@code gc_alloc}
     * @param address where calls to (or references of) {@code name} go; only its address is kept
     * @throws JitLoadException if a loaded object or an earlier runtime symbol already defines it
     */
    public void defineRuntimeSymbol(String name, MemorySegment address) throws JitLoadException {
        synchronized (lock) {
            if (defines(name)) {
                throw new JitLoadException("runtime symbol '" + name + "' is already defined"
                        + (definers.containsKey(name) ? " by object " + objects.get(definers.get(name)).name() : ""));
            }
            runtimeSymbols.put(name, address.address());
        }
    }

    /**
     * Makes {@code name} an indirect symbol: every object loaded from now on that refers to it is
     * linked to {@code stub}, and an object may still define {@code name} itself. Such a definition
     * is a body of the function, not a global of the host: it does not clash with the stub or with
     * other bodies, others are never linked to it, and {@link #unload} does not count references to
     * {@code name} as uses of the object. The owner of the stub (a code patcher) routes calls to a
     * body, and must route them away from it before the body is unloaded. Takes the host's lock.
     *
     * @param name the function's name
     * @param stub the code every object loaded from now on calls for {@code name}; its owner keeps
     *     it mapped while a loaded object refers to it
     * @throws JitLoadException if a loaded object or a runtime symbol already defines it
     */
    public void defineIndirectSymbol(String name, MemorySegment stub) throws JitLoadException {
        synchronized (lock) {
            defineRuntimeSymbol(name, stub);
            indirect.add(name);
        }
    }

    /**
     * Ends what {@link #defineIndirectSymbol} began, when the stub's owner is going away: objects
     * loaded from now on no longer link {@code name} to the stub (they resolve it like any other
     * name, and fail to load if nothing defines it). Objects loaded before keep their links, and
     * the owner must keep the stub valid until they are unloaded. Takes the host's lock.
     *
     * @param name a name given to {@link #defineIndirectSymbol} and not undefined since
     * @throws IllegalArgumentException if {@code name} is not an indirect symbol of this host
     */
    public void undefineIndirectSymbol(String name) {
        synchronized (lock) {
            if (!indirect.remove(name)) {
                throw new IllegalArgumentException("'" + name + "' is not an indirect symbol of this host");
            }
            runtimeSymbols.remove(name);
        }
    }

    /**
     * Whether {@code name} is an indirect symbol now. Any thread; never blocks.
     *
     * @param name a symbol name
     * @return true from {@link #defineIndirectSymbol} until {@link #undefineIndirectSymbol}
     */
    public boolean isIndirect(String name) {
        return indirect.contains(name);
    }

    /**
     * Defines {@code name} as an upcall into Java: loaded code that calls it runs {@code target}.
     * The stub lives in {@code arena}, which must outlive every object that calls it. Takes the
     * host's lock; {@code target} runs on whichever thread runs the calling code.
     *
     * @param name the symbol loaded code calls
     * @param target the Java code to run, of the type {@code descriptor} gives
     * @param descriptor the C signature loaded code calls it with
     * @param arena owns the upcall stub
     * @return the upcall stub, now the address of {@code name} for objects loaded from now on
     * @throws JitLoadException if a loaded object or a runtime symbol already defines {@code name};
     *     the stub is then allocated in {@code arena} but not defined
     * @throws IllegalArgumentException if {@code target}'s type does not match {@code descriptor}
     */
    public MemorySegment defineUpcall(String name, MethodHandle target, FunctionDescriptor descriptor, Arena arena)
            throws JitLoadException {
        MemorySegment stub = Linker.nativeLinker().upcallStub(target, descriptor, arena);
        defineRuntimeSymbol(name, stub);
        upcalls.add(name);
        return stub;
    }

    /**
     * Whether {@code name} was defined with {@link #defineUpcall}: loaded code that calls it calls
     * into Java, where a safepoint may park the thread with the calling function's frame below
     * the slot the poll records. Any thread; never blocks.
     *
     * @param name a symbol name
     * @return true if {@code name} is an upcall defined on this host
     */
    public boolean isUpcall(String name) {
        return upcalls.contains(name);
    }

    /**
     * Loads, links and publishes an ELF relocatable object. The bytes are copied; the caller may
     * free them afterwards. Once linked, its {@code .eh_frame} is registered with the process
     * unwinder (see {@link #liveEhFrameRegistrations}), so that {@code backtrace()} and C++
     * exceptions cross its frames, and then the object is registered with debuggers through the
     * GDB JIT interface (an in-memory copy with its sections at their loaded addresses), so that
     * gdb names, breaks in and unwinds through its functions; every failure after that undoes
     * both, in reverse order, before unmapping.
     *
     * <p>Listeners hear of the object before it is published: none of its symbols or call sites
     * can be found, by this thread or another, until every listener has heard of every function.
     * A {@linkplain JitEventListener#required() required} listener that fails (a safepoint
     * registry refusing the object's stack maps, say) fails the load: the listeners forget the
     * object again, it is unmapped, and this throws naming the listener and why. Anything else a
     * dispatch throws (an error, a failure handler's exception) is undone the same way, then
     * passed on as it is.
     *
     * <p>Takes the host's lock: loads, unloads and symbol definitions wait for each other.
     *
     * @param name how errors and listeners name the object
     * @param elfBytes an x86-64 ELF relocatable object ({@code ET_REL}), e.g. what {@code llc} or
     *     {@link LlvmCompiler#compile} wrote
     * @return the loaded object, published: its globals resolve for later loads and lookups
     * @throws JitLoadException if it cannot be loaded; then nothing stays mapped and nothing is published
     */
    public JitObject load(String name, MemorySegment elfBytes) throws JitLoadException {
        synchronized (lock) {
            ElfFile elf;
            try {
                elf = ElfFile.parse(elfBytes);
            } catch (ElfFormatException e) {
                throw new JitLoadException(name + ": " + e.getMessage(), e);
            }
            long key = nextKey.getAndIncrement();
            List<ElfSymbol> symbols;
            try {
                symbols = elf.symbols();
            } catch (ElfFormatException e) {
                throw new JitLoadException(name + ": " + e.getMessage(), e);
            }
            checkNoClash(name, symbols);
            ObjectLinker.Linked linked = new ObjectLinker(name, key, elf, symbols, this::resolve).link();
            JitObject object;
            // Registered with the process unwinder as soon as it is mapped; from here on, every
            // way out before the object exists deregisters it before unmapping.
            EhFrameRegistration ehFrames = EhFrameRegistration.NONE;
            GdbJitRegistration debugger = null;
            try {
                ehFrames = EhFrameRegistration.register(name, elf, linked);
                debugger = GdbJitRegistration.register(name, elf, linked);
                object = describe(name, key, elf, linked, ehFrames, debugger);
            } catch (JitLoadException | RuntimeException | Error e) {
                if (debugger != null) {
                    debugger.unregister();
                }
                ehFrames.deregister();
                linked.arena().close();
                Libc.munmap(linked.raw());
                if (linked.rawCodeAlias().byteSize() > 0) {
                    Libc.munmap(linked.rawCodeAlias());
                }
                throw e;
            }
            // Listeners hear of the object before anything can find it: until every required
            // listener has accepted it, no lookup, later load or other thread can reach its code.
            try {
                dispatcher.objectLoaded(object.loaded());
            } catch (Throwable t) {
                object.free();
                throw refused(name, t);
            }
            try {
                for (EmittedFunction f : object.functions()) {
                    dispatcher.functionEmitted(f);
                }
            } catch (Throwable t) {
                // Every listener heard objectLoaded: each forgets the object again.
                try {
                    dispatcher.objectFreeing(object.loaded());
                } finally {
                    object.free();
                }
                throw refused(name, t);
            }
            publish(object, linked);
            return object;
        }
    }

    /** A load that a listener refused, as the exception {@link #load} throws; errors other than a listener's refusal pass as they are. */
    private static JitLoadException refused(String name, Throwable t) {
        if (t instanceof JitListenerException e) {
            return new JitLoadException(name + ": not loaded, " + e.getMessage(), e);
        }
        if (t instanceof Error e) {
            throw e;
        }
        if (t instanceof RuntimeException e) {
            throw e;
        }
        return new JitLoadException(name + ": not loaded, a listener failed: " + t, t);
    }

    /** Makes a loaded object's globals and call sites visible to lookups and later loads. */
    private void publish(JitObject object, ObjectLinker.Linked linked) {
        objects.put(object.key(), object);
        for (LoadedSymbol s : object.loaded().symbols()) {
            if (s.global() && !indirect.contains(s.name())) {
                definers.put(s.name(), object.key());
                addresses.put(s.name(), s.address());
            }
        }
        // One merge per symbol per load: readers always see an immutable list.
        Map<String, List<CallSite>> sites = new HashMap<>();
        for (ObjectLinker.Reference r : linked.references()) {
            sites.computeIfAbsent(r.symbol(), k -> new ArrayList<>()).add(r.site());
        }
        sites.forEach((symbol, added) -> callSites.merge(symbol, List.copyOf(added), JitHost::concat));
    }

    /** Undoes {@link #publish}: no lookup finds the object or its call sites any more. */
    private void unpublish(JitObject object) {
        objects.remove(object.key());
        for (String s : object.definedGlobals()) {
            definers.remove(s, object.key());
            addresses.remove(s);
        }
        // Only the lists that held the object's sites are replaced (List.copyOf: a list that
        // SymbolInfo need not copy again), so a caller can tell by identity whether a symbol's
        // call sites changed.
        callSites.replaceAll((symbol, sites) -> sites.stream().noneMatch(site -> site.objectKey() == object.key()) ? sites
                : List.copyOf(sites.stream().filter(site -> site.objectKey() != object.key()).toList()));
        callSites.values().removeIf(List::isEmpty);
    }

    private void checkNoClash(String name, List<ElfSymbol> symbols) throws JitLoadException {
        for (ElfSymbol s : symbols) {
            if (ObjectChecks.exports(s) && !indirect.contains(s.name())) {
                Long other = definers.get(s.name());
                if (other != null) {
                    throw new JitLoadException(name + ": symbol '" + s.name() + "' is already defined by loaded object "
                            + objects.get(other).name() + " (key " + other + ")");
                }
                if (runtimeSymbols.containsKey(s.name())) {
                    throw new JitLoadException(name + ": symbol '" + s.name() + "' is already defined as a runtime symbol");
                }
            }
        }
    }

    private long resolve(String name) {
        Long runtime = runtimeSymbols.get(name);
        if (runtime != null) {
            return runtime;
        }
        Long loaded = addresses.get(name);
        if (loaded != null) {
            return loaded;
        }
        return process.find(name).map(MemorySegment::address).orElse(0L);
    }

    private JitObject describe(String name, long key, ElfFile elf, ObjectLinker.Linked linked, EhFrameRegistration ehFrames,
            GdbJitRegistration debugger) throws JitLoadException {
        List<LoadedSection> sections = new ArrayList<>();
        Map<Integer, ElfSection> byIndex = new HashMap<>();
        for (ElfSection s : elf.sections()) {
            Long address = linked.sectionAddresses().get(s.index());
            if (address != null) {
                byIndex.put(s.index(), s);
                sections.add(new LoadedSection(s.name(), address, s.size(), (s.flags() & ElfSection.SHF_EXECINSTR) != 0,
                        (s.flags() & ElfSection.SHF_WRITE) != 0));
            }
        }
        List<LoadedSymbol> symbols = new ArrayList<>();
        // Functions defined in loaded code: ObjectChecks has made sure each lies inside its section.
        List<LoadedSymbol> codeFunctions = new ArrayList<>();
        Set<String> globals = new HashSet<>();
        for (ElfSymbol s : linked.symbols()) {
            if (s.isUndefined() || s.name().isEmpty() || s.type() == ElfSymbol.STT_SECTION || s.type() == ElfSymbol.STT_FILE) {
                continue;
            }
            if (s.sectionIndex() != ElfSymbol.SHN_ABS && s.sectionIndex() != ElfSymbol.SHN_COMMON
                    && !byIndex.containsKey(s.sectionIndex())) {
                continue;
            }
            boolean global = ObjectChecks.exports(s);
            LoadedSymbol symbol = new LoadedSymbol(s.name(), linked.symbolAddresses()[s.index()], s.size(), s.isFunction(),
                    global);
            symbols.add(symbol);
            if (s.isFunction() && byIndex.containsKey(s.sectionIndex())
                    && (byIndex.get(s.sectionIndex()).flags() & ElfSection.SHF_EXECINSTR) != 0) {
                codeFunctions.add(symbol);
            }
            if (global) {
                globals.add(s.name());
            }
        }

        Optional<MemorySegment> stackMapMemory = Optional.empty();
        Optional<StackMapSection> stackMaps = Optional.empty();
        Optional<ElfSection> smSection = elf.findSection(ObjectStackMaps.SECTION_NAME);
        if (smSection.isPresent() && linked.sectionAddresses().containsKey(smSection.get().index())) {
            long at = linked.sectionAddresses().get(smSection.get().index()) - linked.mapping().address();
            MemorySegment relocated = linked.mapping().asSlice(at, smSection.get().size());
            try {
                stackMaps = Optional.of(StackMapSection.parse(relocated, elf.byteOrder()));
            } catch (StackMapFormatException e) {
                throw new JitLoadException(name + ": " + e.getMessage(), e);
            }
            stackMapMemory = Optional.of(relocated);
        }
        // Source lines are a diagnostic: a line table that cannot be read is named on the object,
        // not a reason to refuse the code.
        List<SourceLine> sourceLines = List.of();
        Optional<String> lineTableProblem = Optional.empty();
        try {
            sourceLines = DebugLineTable.decode(elf, linked.sectionAddresses(), linked.symbolAddresses());
        } catch (DebugLineTable.DebugLineException e) {
            lineTableProblem = Optional.of(name + ": " + e.getMessage());
        }
        LoadedObject loaded = new LoadedObject(key, name, sections, symbols, stackMapMemory, stackMaps, lineTableProblem);

        // Stack map records by the absolute address of their function, now that it is relocated.
        Map<Long, List<CallSiteRecord>> recordsByFunction = new HashMap<>();
        if (stackMaps.isPresent()) {
            for (StackMap map : stackMaps.get().stackMaps()) {
                for (int f = 0; f < map.functionCount(); f++) {
                    FunctionRecord fn = map.function(f);
                    List<CallSiteRecord> records = recordsByFunction.computeIfAbsent(fn.functionAddress(), k -> new ArrayList<>());
                    for (int r = 0; r < fn.recordCount(); r++) {
                        records.add(fn.record(r));
                    }
                }
            }
        }
        List<LoadedSymbol> byAddress = symbols.stream().sorted(Comparator.comparingLong(LoadedSymbol::address)).toList();
        long[] starts = byAddress.stream().mapToLong(LoadedSymbol::address).toArray();
        List<EmittedFunction> functions = new ArrayList<>();
        List<LoadedSymbol> codeByAddress = codeFunctions.stream().sorted(Comparator.comparingLong(LoadedSymbol::address)).toList();
        for (LoadedSymbol fn : codeByAddress) {
            // Every symbol inside [start, start + size): a binary search to the first, then a scan.
            Map<String, Long> labels = new LinkedHashMap<>();
            int first = java.util.Arrays.binarySearch(starts, fn.address());
            while (first > 0 && starts[first - 1] == fn.address()) {
                first--;
            }
            for (int k = first; k < starts.length && starts[k] < fn.address() + Math.max(1, fn.size()); k++) {
                labels.put(byAddress.get(k).name(), starts[k]);
            }
            List<CallSiteRecord> records = recordsByFunction.getOrDefault(fn.address(), List.of());
            for (int i = 0; i < records.size(); i++) {
                labels.put(EmittedFunction.stackMapLabel(i, records.get(i).id()), fn.address() + records.get(i).instructionOffset());
            }
            MemorySegment code = linked.mapping().asSlice(fn.address() - linked.mapping().address(), fn.size());
            List<SourceLine> lines = new ArrayList<>();
            for (SourceLine row : sourceLines) {
                if (row.address() >= fn.address() && row.address() < fn.address() + fn.size()) {
                    lines.add(row);
                }
            }
            lines.sort(Comparator.comparingLong(SourceLine::address));
            functions.add(new EmittedFunction(fn.name(), fn.address(), fn.size(), loaded, labels, records, code, lines));
        }
        Set<String> referenced = new HashSet<>();
        for (ObjectLinker.Reference r : linked.references()) {
            referenced.add(r.symbol());
        }
        return new JitObject(loaded, functions, linked, ehFrames, debugger, globals, referenced);
    }

    /**
     * Unloads {@code object}: listeners hear objectFreeing while its memory is still mapped, then
     * its symbols disappear, it is unregistered from debuggers (GDB JIT interface), its
     * {@code .eh_frame} is deregistered from the process unwinder, and its memory is unmapped. No thread may be running, or unwinding through, its code. Takes the host's lock; listeners run on
     * this thread, inside it. Every segment of the object (its mapping, its events' code and stack
     * maps, its code alias) then throws IllegalStateException when accessed.
     *
     * @param object an object this host loaded
     * @param force unload even though other loaded objects still refer to its symbols; their calls
     *     into it then jump to unmapped memory, so only a caller that has made sure they will not
     *     run (or will be relinked) may force
     * @throws JitLoadException if it is not loaded here, or if {@code force} is false and others refer
     *     to it or a listener refuses ({@link dev.safepointkit.events.JitEventListener#unloadRefusal})
     */
    public void unload(JitObject object, boolean force) throws JitLoadException {
        synchronized (lock) {
            if (objects.get(object.key()) != object) {
                throw new JitLoadException(object.name() + ": not loaded by this host (key " + object.key() + ")");
            }
            if (!force) {
                List<String> users = new ArrayList<>();
                for (JitObject other : objects.values()) {
                    if (other == object) {
                        continue;
                    }
                    for (String s : other.referencedSymbols()) {
                        if (object.definedGlobals().contains(s) && !indirect.contains(s)) {
                            users.add(other.name() + " uses '" + s + "'");
                        }
                    }
                }
                if (!users.isEmpty()) {
                    users.sort(null);
                    throw new JitLoadException(object.name() + ": still used by loaded code (" + String.join(", ", users)
                            + "); unload those first or force");
                }
                // A listener's own references (a patcher's stub or relinked calls) are not symbol
                // uses the host can count: it says so itself.
                Optional<String> refused = dispatcher.unloadRefusal(object.loaded());
                if (refused.isPresent()) {
                    throw new JitLoadException(object.name() + ": still reached (" + refused.get()
                            + "); unload it through what leads into it, or force");
                }
            }
            dispatcher.objectFreeing(object.loaded());
            unpublish(object);
            object.free();
        }
    }

    /**
     * An action that {@link #whileLoaded} runs with the host's lock held.
     *
     * @param <T> what it returns
     * @param <X> what it may throw
     */
    @FunctionalInterface
    public interface LoadedAction<T, X extends Exception> {
        /**
         * Runs with the host's lock held: no object is loaded or unloaded meanwhile.
         *
         * @return what the caller of {@link #whileLoaded} gets back
         * @throws X its own failure, passed on unchanged
         */
        T run() throws X;
    }

    /**
     * Runs {@code action} with the host's lock held if {@code object} is loaded, so that it stays
     * loaded until the action returns. A code patcher makes a stub lead into an object this way:
     * an {@link #unload} (which asks {@link dev.safepointkit.events.JitEventListener#unloadRefusal}
     * under the same lock) then either comes after and is refused, or came before and this
     * refuses. The action may take no lock that a thread holding a lock the host calls out under
     * (a listener's) may wait for; it should be short: loads and unloads wait for it.
     *
     * @param object an object of this host
     * @param action what to do while it is loaded
     * @param <T> what the action returns
     * @param <X> what it may throw
     * @return what the action returned
     * @throws JitLoadException if {@code object} is not loaded (any more); the action did not run
     * @throws X what the action threw
     */
    public <T, X extends Exception> T whileLoaded(JitObject object, LoadedAction<T, X> action) throws JitLoadException, X {
        synchronized (lock) {
            if (objects.get(object.key()) != object) {
                throw new JitLoadException(object.name() + ": not loaded by this host (key " + object.key()
                        + "); it was unloaded");
            }
            return action.run();
        }
    }

    /**
     * The writable aliases of every loaded object's code, for a code writer (a code patcher): the
     * code itself is mapped read + execute and never becomes writable, and its alias is the only
     * way to change it. Any thread.
     *
     * @return a view of the host's code at the time of each lookup, not a snapshot: it finds
     *     objects loaded later and no longer finds unloaded ones
     */
    public CodeAliases codeAliases() {
        return new CodeAliases(this);
    }

    /** The alias of [address, address + length) in a loaded object's code; empty if not loaded code. */
    Optional<MemorySegment> codeAlias(long address, long length) {
        for (JitObject o : objects.values()) {
            Optional<MemorySegment> alias = o.codeAlias(address, length);
            if (alias.isPresent()) {
                return alias;
            }
        }
        return Optional.empty();
    }

    /**
     * Where the far-call trampoline at {@code address} jumps, if a loaded object has one there
     * (the target of a call site {@linkplain CallSite#viaTrampoline bound to a trampoline}). Any
     * thread; never blocks.
     *
     * @param address the trampoline's first byte, an absolute address
     * @return the absolute address it jumps to; empty if {@code address} is not in loaded code or
     *     the {@link FarCallTrampoline#SIZE} bytes there are not a trampoline
     */
    public java.util.OptionalLong farCallTarget(long address) {
        for (JitObject o : objects.values()) {
            MemorySegment code = o.code();
            long offset = address - code.address();
            if (code.byteSize() > 0 && offset >= 0 && offset <= code.byteSize() - FarCallTrampoline.SIZE) {
                return FarCallTrampoline.target(code.asSlice(offset, FarCallTrampoline.SIZE));
            }
        }
        return java.util.OptionalLong.empty();
    }

    /**
     * The current address of {@code name}, resolved as loads resolve it: a runtime symbol, a
     * loaded object's global, else the process's. Any thread; never blocks.
     *
     * @param name a symbol name
     * @return its absolute address; empty if nothing defines it
     */
    public Optional<Long> address(String name) {
        long a = resolve(name);
        return a == 0 ? Optional.empty() : Optional.of(a);
    }

    /**
     * Whether a loaded object's global or a runtime symbol (an indirect one included) of this host
     * is named {@code name}: what {@link #defineRuntimeSymbol} and {@link #defineIndirectSymbol}
     * refuse. The process's own symbols are not counted. Any thread; never blocks; may be stale by
     * the time it returns, if another thread loads or defines meanwhile.
     *
     * @param name a symbol name
     * @return true if the host defines it
     */
    public boolean defines(String name) {
        return definers.containsKey(name) || runtimeSymbols.containsKey(name);
    }

    /**
     * What the host knows of {@code name}: definer, address, call sites. Any thread; never blocks.
     *
     * @param name a symbol name
     * @return a snapshot; empty if nothing defines {@code name} and no loaded code refers to it
     */
    public Optional<SymbolInfo> symbol(String name) {
        Optional<Long> address = address(name);
        List<CallSite> sites = callSites.getOrDefault(name, List.of());
        if (address.isEmpty() && sites.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new SymbolInfo(name, definers.getOrDefault(name, -1L), address.orElse(0L), sites));
    }

    private static List<CallSite> concat(List<CallSite> a, List<CallSite> b) {
        List<CallSite> all = new ArrayList<>(a.size() + b.size());
        all.addAll(a);
        all.addAll(b);
        return List.copyOf(all);
    }

    /**
     * Memory mappings the host's linker holds now, across all hosts: a failed load adds none.
     *
     * @return the number of mappings made and not yet unmapped, in this process; a leak shows here
     */
    public static long liveMappings() {
        return Libc.liveMappings();
    }

    /**
     * Sections the host has registered with the process unwinder (libgcc's {@code __register_frame})
     * and not yet deregistered, across all hosts: one per loaded object that has {@code .eh_frame}.
     * Unloading an object, and a load that fails after its registration, deregister it.
     *
     * @return the number of live registrations in this process; a leak shows here
     */
    public static long liveEhFrameRegistrations() {
        return EhFrameRegistration.live();
    }

    /**
     * The objects loaded now. Any thread; never blocks.
     *
     * @return an immutable snapshot, oldest first (by key)
     */
    public List<JitObject> objects() {
        return objects.values().stream().sorted(Comparator.comparingLong(JitObject::key)).toList();
    }

    /**
     * A method handle that calls loaded function {@code name} with the C calling convention. The
     * address is resolved now: the handle keeps calling it even after the object is unloaded, so
     * the caller must not use it then.
     *
     * @param name the function's symbol
     * @param descriptor its C signature
     * @param options linker options, e.g. {@link Linker.Option#critical}
     * @return a downcall handle of the type {@code descriptor} gives
     * @throws JitLoadException if no loaded object, runtime symbol or process library defines it
     */
    public MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) throws JitLoadException {
        long a = address(name).orElseThrow(() -> new JitLoadException("no symbol '" + name + "' to call"));
        return Linker.nativeLinker().downcallHandle(MemorySegment.ofAddress(a), descriptor, options);
    }

    /** Unloads every object, newest first, forcing: the host is going away. */
    @Override
    public void close() {
        synchronized (lock) {
            List<JitObject> all = new ArrayList<>(objects());
            java.util.Collections.reverse(all);
            for (JitObject o : all) {
                try {
                    unload(o, true);
                } catch (JitLoadException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }
}
