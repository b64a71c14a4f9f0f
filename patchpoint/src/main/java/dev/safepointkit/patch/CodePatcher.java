package dev.safepointkit.patch;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.events.LoadedSymbol;
import dev.safepointkit.host.CallSite;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.roots.SafepointCoordinator;
import dev.safepointkit.roots.StackWalkException;
import dev.safepointkit.roots.StoppedWorld;
import dev.safepointkit.roots.ThreadStack;
import dev.safepointkit.stackmap.CallSiteRecord;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Patches the code a {@link JitHost} loaded while other threads run it (x86-64).
 *
 * <ul>
 *   <li><b>Stubs.</b> {@link #declare} gives a function that is not compiled yet a stub and makes
 *       the stub the function's address in the host ({@link JitHost#defineIndirectSymbol}). The first
 *       call through it runs the {@link LazyCompiler} on the calling thread, then continues into the
 *       new body with the caller's arguments. Retargeting a stub is one atomic 8-byte store.</li>
 *   <li><b>Relinking.</b> Once a body exists, every {@code call}/{@code jmp rel32} the host
 *       recorded that goes through the stub is rewritten to reach the body directly, when it is in
 *       range. A site whose 4-byte displacement is 4-byte aligned is rewritten with one atomic store
 *       while threads run; any other site only while every mutator is stopped ({@link #safepoint}).</li>
 *   <li><b>Redefinition and deletion.</b> {@link #redefine} moves the stub and every relinked
 *       site to a new body; {@link #unload} moves them back to the stub. The old object is
 *       retired, and {@link #safepoint} frees it once no stopped thread's stack refers into it.</li>
 *   <li><b>Patchpoint sleds.</b> {@link #sleds} finds them from the stack map records;
 *       {@link #callFromSled}, {@link #retargetSled} and {@link #restoreSled} always leave a
 *       whole, consistent sled.</li>
 * </ul>
 *
 * <p>Every write is checked against the bytes the patcher expects there (else nothing is written
 * and a {@link PatchException} says why) and kept in the {@link #patchLog}. Code pages are
 * writable only for the duration of the write.
 *
 * <p>Safepoints: the patcher stops the world with its {@link SafepointCoordinator}; every thread
 * that runs JIT code must be one of its mutators. Without a coordinator, unaligned call sites stay
 * on the stub, whole-sled rewrites are refused, and {@link #unload} frees at once, trusting the
 * caller that no thread runs the object. Never call a method that stops the world from a thread
 * inside JIT code (a lazy compiler, an upcall): the stop would wait for that thread.
 *
 * <p>Closing: {@link #close} and {@link JitHost#close} may come in either order, so
 * {@code try (host; patcher)} works. Closed first, the patcher makes no more changes and the host
 * stops linking new objects to its stubs, but the stubs stay mapped (and keep leading where they
 * led) until the host has unloaded every object that refers to a declared function; the last such
 * unload frees them. Closed after the host, the patcher frees them at once. Close either only once
 * no thread runs JIT code.
 *
 * <p>Thread safe.
 */
public final class CodePatcher implements AutoCloseable {
    private final JitHost host;
    private final SafepointCoordinator coordinator;
    private final Consumer<Throwable> failures;
    private final CodeWriter writer;
    private final ReentrantLock lock = new ReentrantLock();
    private final Arena arena = Arena.ofShared();
    private final long resolver;
    private final List<StubBlock> blocks = new ArrayList<>();
    /** By id; ids are dense from 0. */
    private final List<Entry> entries = new CopyOnWriteArrayList<>();
    private final Map<String, Entry> byName = new ConcurrentHashMap<>();
    private final Map<Long, Site> sites = new ConcurrentHashMap<>();
    /** Unaligned sites waiting for a safepoint: site address -> wanted target. */
    private final Map<Long, Long> pending = new ConcurrentHashMap<>();
    /** Sleds the patcher has seen, by address: their current bytes. */
    private final Map<Long, byte[]> sledBytes = new ConcurrentHashMap<>();
    private final List<JitObject> retired = new ArrayList<>();
    /** Retired objects a {@link #safepoint} is unloading now; guarded by the lock. */
    private final List<JitObject> freeing = new ArrayList<>();
    /** Set under the lock by {@link #close}; from then on nothing is patched. */
    private volatile boolean closed;
    /** Whether the stub blocks and the resolver upcall are freed: once, by whoever sees no caller left. */
    private final AtomicBoolean stubsFreed = new AtomicBoolean();
    private final JitEventListener listener = new JitEventListener() {
        /** The patcher writes only code it has heard of: an object it missed could never be patched. */
        @Override
        public boolean required() {
            return true;
        }

        @Override
        public String toString() {
            return "the code patcher";
        }

        @Override
        public void objectLoaded(LoadedObject object) {
            writer.objectLoaded(object);
        }

        @Override
        public void objectFreeing(LoadedObject object) {
            writer.objectFreeing(object);
            sites.values().removeIf(s -> s.objectKey == object.key());
            pending.keySet().removeIf(a -> !sites.containsKey(a));
            for (LoadedSection s : object.sections()) {
                sledBytes.keySet().removeIf(s::contains);
            }
            if (closed) {
                freeStubsOnceUncalled(object.key());
            }
        }
    };

    /** A patcher without safepoints: see the class comment for what it cannot do. */
    public CodePatcher(JitHost host) {
        this(host, null, CodePatcher::report);
    }

    /**
     * @param coordinator stops the threads that run JIT code when a change cannot be made while
     *     they run; null for none
     * @param failures hears of a lazy compile that failed (on the calling thread, inside JIT code)
     */
    public CodePatcher(JitHost host, SafepointCoordinator coordinator, Consumer<Throwable> failures) {
        this.host = host;
        this.coordinator = coordinator;
        this.failures = failures;
        CoreSync.require();
        this.writer = new CodeWriter(host.codeAliases());
        host.addListener(listener);
        for (JitObject o : host.objects()) {
            writer.objectLoaded(o.loaded());
        }
        try {
            MethodHandle resolve = MethodHandles.lookup().findVirtual(CodePatcher.class, "resolve",
                    MethodType.methodType(long.class, long.class)).bindTo(this);
            this.resolver = Linker.nativeLinker().upcallStub(resolve,
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), arena).address();
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    private static void report(Throwable t) {
        System.err.println("safepointkit patch: " + t);
    }

    // ---- stubs and lazy compilation ------------------------------------------------------------

    /**
     * Declares {@code name}: gives it a stub that compiles it on the first call. Declare before
     * loading objects that call it; they are linked to the stub.
     *
     * @throws JitLoadException if the host already has a symbol of that name
     */
    public Stub declare(String name, LazyCompiler compiler) throws JitLoadException {
        return declare(name, compiler, 0);
    }

    /**
     * As {@link #declare(String, LazyCompiler)}, with a function to continue into when the compile
     * fails: it gets the caller's arguments (an interpreter entry, or one that reports an error to
     * the language). With none ({@code 0}), a failed lazy compile halts the process after
     * reporting: the call has nowhere to go.
     */
    public Stub declare(String name, LazyCompiler compiler, long fallback) throws JitLoadException {
        lock.lock();
        try {
            checkOpen();
            if (byName.containsKey(name)) {
                throw new JitLoadException("'" + name + "' is already declared");
            }
            int id = entries.size();
            if (id % StubBlock.CAPACITY == 0) {
                blocks.add(new StubBlock(id, resolver));
            }
            Entry e = new Entry(name, compiler, fallback, blocks.getLast(), id % StubBlock.CAPACITY);
            // The entry exists before the name is published: once the host has the symbol, a
            // concurrent load can link to the stub and call it, and resolve must find the entry.
            entries.add(e);
            byName.put(name, e);
            try {
                host.defineIndirectSymbol(name, MemorySegment.ofAddress(e.address()));
            } catch (JitLoadException | RuntimeException ex) {
                entries.removeLast();
                byName.remove(name);
                throw ex;
            }
            return e;
        } finally {
            lock.unlock();
        }
    }

    public Optional<Stub> stub(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    /** Compiles {@code name} now, from Java, if it has no body yet; returns the body. */
    public long compile(String name) throws PatchException {
        Entry e = entry(name);
        lock.lock();
        try {
            checkOpen();
            if (e.body == 0) {
                install(e, runCompiler(e));
            }
            return e.body;
        } catch (PatchException ex) {
            throw ex;
        } catch (Exception ex) {
            throw new PatchException("compiling '" + name + "' failed: " + ex.getMessage(), ex);
        } finally {
            lock.unlock();
        }
    }

    /** The reentry upcall: never throws. */
    private long resolve(long id) {
        Entry e = null;
        try {
            lock.lock();
            try {
                if (id < 0 || id >= entries.size()) {
                    throw new IllegalStateException("stub " + id + " has no declared function");
                }
                e = entries.get((int) id);
                if (e.body == 0) {
                    checkOpen();
                    install(e, runCompiler(e));
                }
                return e.body;
            } finally {
                lock.unlock();
            }
        } catch (Throwable t) {
            failures.accept(t);
            if (e != null && e.fallback != 0) {
                return e.fallback;
            }
            System.err.println("safepointkit patch: lazy compile of '" + (e == null ? "stub " + id : e.name)
                    + "' failed and it has no fallback; halting: " + t);
            Runtime.getRuntime().halt(70);
            return 0;
        }
    }

    private JitObject runCompiler(Entry e) throws Exception {
        JitObject o = e.compiler.compile(e.name);
        if (o == null) {
            throw new PatchException("the compiler of '" + e.name + "' returned no object");
        }
        return o;
    }

    /**
     * Points the stub, then its sites, at the body {@code object} defines. All or nothing: every
     * site is checked before the stub or any site changes. Holds the lock.
     */
    private RelinkReport install(Entry e, JitObject object) throws PatchException {
        long body = bodyIn(object, e.name);
        SitePlan plan = planSites(e, body);
        e.setTarget(body);
        e.body = body;
        e.bodyObject = object;
        return plan.apply();
    }

    private static long bodyIn(JitObject object, String name) throws PatchException {
        LoadedSymbol s = object.loaded().symbol(name).orElseThrow(
                () -> new PatchException(object.name() + " does not define '" + name + "'"));
        if (!s.function() || !s.global()) {
            throw new PatchException(object.name() + ": '" + name + "' is not a global function");
        }
        return s.address();
    }

    private Entry entry(String name) {
        Entry e = byName.get(name);
        if (e == null) {
            throw new IllegalArgumentException("'" + name + "' is not declared");
        }
        return e;
    }

    // ---- call sites ----------------------------------------------------------------------------

    /**
     * Rewrites every call site of {@code name} that goes through its stub into a direct call to
     * its body. Nothing to do while it has no body.
     */
    public RelinkReport relink(String name) throws PatchException {
        Entry e = entry(name);
        lock.lock();
        try {
            checkOpen();
            return e.body == 0 ? new RelinkReport(0, 0, 0, 0, 0, 0) : planSites(e, e.body).apply();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Sends every relinked call site of {@code name} back through its stub; the stub keeps leading
     * to the body. The way back from {@link #relink}, for a runtime that wants calls to pass one
     * place again (to count them, or before it redefines often).
     */
    public RelinkReport unlink(String name) throws PatchException {
        Entry e = entry(name);
        lock.lock();
        try {
            checkOpen();
            return planSites(e, 0).apply();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Makes {@code object}'s definition of {@code name} its body: the stub and every relinked site
     * move to it. The previous body's object is retired once no declared function has its body
     * there; {@link #safepoint} frees it.
     */
    public RelinkReport redefine(String name, JitObject object) throws PatchException {
        Entry e = entry(name);
        lock.lock();
        try {
            checkOpen();
            JitObject old = e.bodyObject;
            RelinkReport r = install(e, object);
            retireIfUnused(old);
            return r;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Deletes a module: every declared function whose body {@code object} holds goes back to its
     * lazy entry (the next call compiles it again), and every call site that reached into the
     * object goes back to the stub. With a coordinator the object is then freed at a safepoint
     * (or later, by {@link #safepoint}, while a stopped thread still runs it); without one it is
     * freed at once, and the caller must know that no thread runs it.
     *
     * @return whether the object is freed
     */
    public boolean unload(JitObject object) throws PatchException, JitLoadException, StackWalkException {
        lock.lock();
        try {
            checkOpen();
            // Every site of every function it holds is checked first: a refusal changes nothing,
            // so no direct call into the object survives an unload that went through.
            Map<Entry, SitePlan> plans = new LinkedHashMap<>();
            for (Entry e : entries) {
                if (e.bodyObject == object) {
                    plans.put(e, planSites(e, 0));
                }
            }
            for (Map.Entry<Entry, SitePlan> p : plans.entrySet()) {
                Entry e = p.getKey();
                e.setTarget(e.lazyEntry());
                e.body = 0;
                e.bodyObject = null;
                p.getValue().apply();
            }
            if (coordinator != null && !retired.contains(object)) {
                retired.add(object);
            }
        } finally {
            lock.unlock();
        }
        if (coordinator == null) {
            host.unload(object, false);
            return true;
        }
        safepoint();
        return !retired().contains(object);
    }

    /** Objects that no longer hold a body but may still be running. */
    public List<JitObject> retired() {
        lock.lock();
        try {
            return List.copyOf(retired);
        } finally {
            lock.unlock();
        }
    }

    private void retireIfUnused(JitObject old) {
        if (old == null || retired.contains(old)) {
            return;
        }
        for (Entry e : entries) {
            if (e.bodyObject == old) {
                return;
            }
        }
        retired.add(old);
    }

    /**
     * What pointing every site of {@code e} that belongs to its stub at {@code target} (or back to
     * the stub when {@code target} is 0) will write. Every site to be rewritten now is checked to
     * hold the bytes the patcher last wrote there, so that {@link SitePlan#apply} cannot be refused
     * half-way by a site someone else changed. Sites of objects being unloaded are dropped: nothing
     * runs them any more. Changes nothing. Holds the lock.
     */
    private SitePlan planSites(Entry e, long target) throws PatchException {
        SitePlan plan = new SitePlan();
        List<CallSite> known = host.symbol(e.name).map(s -> s.callSites()).orElse(List.of());
        for (CallSite cs : known) {
            if (!cs.isBranch()) {
                continue;
            }
            Site s = sites.get(cs.address());
            if (s == null) {
                s = discover(cs, e);
                if (s == null) {
                    plan.foreign++;
                    continue;
                }
            }
            long want = target == 0 ? s.home : target;
            long disp = want - (s.address + 4);
            if (disp != (int) disp) {
                want = s.home;
                plan.outOfRange++;
            }
            if (want == s.current) {
                plan.unchanged.add(s);
            } else if (s.aligned()) {
                if (!writer.isLiveCode(s.address - 1, 5)) {
                    plan.unloading.add(s);
                    continue;
                }
                byte[] now = writer.read(s.address - 1, 5);
                if (!Arrays.equals(now, s.bytes(s.current))) {
                    throw new PatchException(String.format("%s at 0x%x: expected [%s], found [%s]; nothing written,"
                            + " no site of '%s' changed", s.describe(want), s.address - 1, X86Code.hex(s.bytes(s.current)),
                            X86Code.hex(now), e.name));
                }
                plan.now.put(s, want);
            } else if (coordinator != null) {
                plan.deferred.put(s, want);
            } else {
                plan.stayOnStub++;
            }
        }
        return plan;
    }

    /** The writes {@link #planSites} decided on, applied under the same hold of the lock. */
    private final class SitePlan {
        final Map<Site, Long> now = new LinkedHashMap<>();
        final Map<Site, Long> deferred = new LinkedHashMap<>();
        final List<Site> unchanged = new ArrayList<>();
        final List<Site> unloading = new ArrayList<>();
        int outOfRange;
        int stayOnStub;
        int foreign;

        RelinkReport apply() throws PatchException {
            for (Site s : unloading) {
                sites.remove(s.address);
                pending.remove(s.address);
            }
            for (Site s : unchanged) {
                pending.remove(s.address);
            }
            int patched = 0;
            for (Map.Entry<Site, Long> w : now.entrySet()) {
                Site s = w.getKey();
                pending.remove(s.address);
                if (rewriteUnlessUnloaded(s, w.getValue())) {
                    patched++;
                }
            }
            for (Map.Entry<Site, Long> d : deferred.entrySet()) {
                pending.put(d.getKey().address, d.getValue());
            }
            return new RelinkReport(patched, deferred.size(), unchanged.size(), outOfRange, stayOnStub, foreign);
        }
    }

    /** Where {@code cs} leads now; a site of the stub if it leads to the stub, directly or through a host stub. */
    private Site discover(CallSite cs, Entry e) throws PatchException {
        if (!writer.isLiveCode(cs.address() - 1, 5)) {
            return null;
        }
        byte[] b = writer.read(cs.address() - 1, 5);
        int opcode = Byte.toUnsignedInt(b[0]);
        if (opcode != X86Code.CALL_REL32 && opcode != X86Code.JMP_REL32) {
            return null;
        }
        long target = cs.address() + 4 + X86Code.getInt(b, 1);
        boolean toStub = target == e.address();
        if (!toStub && cs.viaTrampoline()) {
            // The host's far-call trampoline in the caller's object, which the host decodes.
            toStub = host.farCallTarget(target).orElse(0) == e.address();
        }
        if (!toStub) {
            return null;
        }
        Site s = new Site(cs.address(), cs.objectKey(), e.name, (byte) opcode, target);
        sites.put(s.address, s);
        return s;
    }

    private void rewrite(Site s, long want, boolean whileRunning) throws PatchException {
        writer.write(s.address - 1, s.bytes(s.current), s.bytes(want), whileRunning, s.describe(want));
        s.current = want;
    }

    /**
     * An aligned site's atomic rewrite, or nothing if its object started unloading since it was
     * planned (the writer checks that and writes under one lock, which the unload takes too).
     */
    private boolean rewriteUnlessUnloaded(Site s, long want) throws PatchException {
        if (writer.writeUnlessUnloaded(s.address - 1, s.bytes(s.current), s.bytes(want), s.describe(want)) == null) {
            sites.remove(s.address);
            return false;
        }
        s.current = want;
        return true;
    }

    /** Where the call at a site (the address of its rel32) leads now, as the patcher last set it. */
    public Optional<Long> siteTarget(long siteAddress) {
        Site s = sites.get(siteAddress);
        return s == null ? Optional.empty() : Optional.of(s.current);
    }

    /** Sites waiting for a safepoint. */
    public int pendingSites() {
        return pending.size();
    }

    // ---- safepoints ----------------------------------------------------------------------------

    /**
     * Stops every mutator, rewrites the call sites that wait for a safepoint, and frees the retired
     * objects that no stopped thread's stack refers into; listeners hear of each. Call it from a
     * thread outside JIT code.
     *
     * @return the number of objects freed
     */
    public int safepoint() throws PatchException, StackWalkException, JitLoadException {
        List<JitObject> free = new ArrayList<>();
        whileStopped("a safepoint", world -> {
            applyPending(world);
            for (JitObject o : retired) {
                if (!freeing.contains(o) && !anyStackRefersInto(world, o)) {
                    free.add(o);
                }
            }
            // Still tracked until unmapped: a failed unload below must not lose them.
            freeing.addAll(free);
        });
        // Nothing leads into these any more and no thread runs them: unmap them. Each one that
        // is unloaded (here, or already by someone else) stops being tracked; one failure does
        // not stop the others.
        JitLoadException failed = null;
        int freed = 0;
        for (JitObject o : free) {
            try {
                host.unload(o, false);
                freed++;
            } catch (JitLoadException e) {
                if (failed == null) {
                    failed = e;
                } else {
                    failed.addSuppressed(e);
                }
            } finally {
                lock.lock();
                try {
                    freeing.remove(o);
                    if (!host.objects().contains(o)) {
                        retired.remove(o);
                    }
                } finally {
                    lock.unlock();
                }
            }
        }
        if (failed != null) {
            throw failed;
        }
        return freed;
    }

    /**
     * Rewrites the call sites that wait for a safepoint, inside a stop someone else made (a
     * collector's {@code WorldAction}): {@code world} shows that every mutator is stopped.
     */
    public int applyPending(StoppedWorld world) throws PatchException {
        if (world == null) {
            throw new IllegalArgumentException("call inside a stop: pass its StoppedWorld");
        }
        lock.lock();
        try {
            checkOpen();
            int n = 0;
            for (Map.Entry<Long, Long> p : new ArrayList<>(pending.entrySet())) {
                Site s = sites.get(p.getKey());
                if (s != null && s.current != p.getValue()) {
                    rewrite(s, p.getValue(), false);
                    n++;
                }
                pending.remove(p.getKey());
            }
            writer.serializeAfterStop();
            return n;
        } finally {
            lock.unlock();
        }
    }

    /** Whether a word on a stopped thread's stack (a return address) lies in {@code o}'s code. */
    private static boolean anyStackRefersInto(StoppedWorld world, JitObject o) {
        List<LoadedSection> code = o.loaded().sections().stream().filter(LoadedSection::executable).toList();
        for (ThreadStack t : world.stacks()) {
            MemorySegment m = t.memory();
            for (long at = 0; at + 8 <= m.byteSize(); at += 8) {
                long word = m.get(ValueLayout.JAVA_LONG_UNALIGNED, at);
                for (LoadedSection s : code) {
                    if (s.contains(word)) {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    /** Holds the lock. */
    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the code patcher is closed");
        }
    }

    private SafepointCoordinator requireCoordinator(String what) {
        if (coordinator == null) {
            throw new IllegalStateException(what + " needs a SafepointCoordinator: this patcher has none");
        }
        return coordinator;
    }

    // ---- patchpoint sleds ----------------------------------------------------------------------

    /**
     * The sleds of the patchpoints with {@code id} in {@code object}, their lengths found by
     * decoding: the call form's 13 bytes if present, then the run of NOPs. Prefer
     * {@link #sled(JitObject, long, int)} when the numBytes the code was compiled with is known:
     * NOPs right after a sled would be counted as its own.
     */
    public List<Sled> sleds(JitObject object, long id) throws PatchException {
        List<Sled> found = new ArrayList<>();
        for (EmittedFunction f : object.functions()) {
            List<CallSiteRecord> records = f.stackMapRecords();
            for (int i = 0; i < records.size(); i++) {
                if (records.get(i).id() != id) {
                    continue;
                }
                long at = f.stackMapAddress(i);
                int room = (int) Math.min(256, f.address() + f.size() - at);
                byte[] code = writer.read(at, room);
                int length = X86Code.isSledCall(code) ? X86Code.SLED_CALL_SIZE + X86Code.nopRun(code, X86Code.SLED_CALL_SIZE)
                        : X86Code.nopRun(code, 0);
                if (length == 0) {
                    throw new PatchException(String.format("%s: patchpoint %d at 0x%x: no NOP sled or sled call there [%s]",
                            f.name(), id, at, X86Code.hex(Arrays.copyOf(code, Math.min(16, code.length)))));
                }
                sledBytes.put(at, Arrays.copyOf(code, length));
                found.add(new Sled(at, length, f.name(), id, object.key()));
            }
        }
        return found;
    }

    /** The one sled of patchpoint {@code id} in {@code object}, compiled with {@code numBytes}. */
    public Sled sled(JitObject object, long id, int numBytes) throws PatchException {
        List<Sled> all = sleds(object, id);
        if (all.size() != 1) {
            throw new PatchException(object.name() + ": " + all.size() + " patchpoints with ID " + id + ", expected one");
        }
        Sled s = all.getFirst();
        if (s.length() < numBytes) {
            throw new PatchException(String.format("%s: patchpoint %d at 0x%x: only %d bytes of sled, expected %d",
                    s.function(), id, s.address(), s.length(), numBytes));
        }
        sledBytes.put(s.address(), Arrays.copyOf(sledBytes.get(s.address()), numBytes));
        return new Sled(s.address(), numBytes, s.function(), id, s.objectKey());
    }

    /** The target the sled calls now, if it is in the call form. */
    public Optional<Long> sledTarget(Sled sled) throws PatchException {
        byte[] now = writer.read(sled.address(), sled.length());
        return X86Code.isSledCall(now) ? Optional.of(X86Code.sledCallTarget(now)) : Optional.empty();
    }

    /** Rewrites the whole sled into {@code movabs $target, %r11; call *%r11} and NOPs, at a safepoint. */
    public void callFromSled(Sled sled, long target) throws PatchException, StackWalkException {
        if (sled.length() < X86Code.SLED_CALL_SIZE) {
            throw new PatchException(String.format("%s: patchpoint %d at 0x%x: %d bytes cannot hold a call (%d needed)",
                    sled.function(), sled.id(), sled.address(), sled.length(), X86Code.SLED_CALL_SIZE));
        }
        byte[] call = X86Code.sledCall(target);
        byte[] after = Arrays.copyOf(call, sled.length());
        System.arraycopy(X86Code.nops(sled.length() - call.length), 0, after, call.length, sled.length() - call.length);
        writeSledStopped(sled, after, String.format("sled %d in %s calls 0x%x", sled.id(), sled.function(), target));
    }

    /** Puts NOPs back over the whole sled, at a safepoint. */
    public void restoreSled(Sled sled) throws PatchException, StackWalkException {
        writeSledStopped(sled, X86Code.nops(sled.length()), "sled " + sled.id() + " in " + sled.function() + " back to NOPs");
    }

    /**
     * Changes the target of a sled in the call form. When the imm64 is 8-byte aligned this is one
     * atomic store while threads run; otherwise it waits for a safepoint.
     */
    public void retargetSled(Sled sled, long target) throws PatchException, StackWalkException {
        String what = String.format("sled %d in %s retargeted to 0x%x", sled.id(), sled.function(), target);
        if ((sled.address() + X86Code.SLED_TARGET_OFFSET) % 8 == 0) {
            lock.lock();
            try {
                checkOpen();
                byte[] before = expectedSled(sled);
                byte[] after = retargeted(sled, before, target);
                writer.write(sled.address(), before, after, true, what);
                sledBytes.put(sled.address(), after);
            } finally {
                lock.unlock();
            }
        } else {
            // The new bytes are made from the sled as it is inside the stop, not as it was before
            // it: a restore that ran in between is refused, not silently undone.
            whileStopped("retargeting a sled", world -> {
                byte[] before = expectedSled(sled);
                byte[] after = retargeted(sled, before, target);
                writer.write(sled.address(), before, after, false, what);
                sledBytes.put(sled.address(), after);
            });
        }
    }

    /** The sled's call form {@code before} with its imm64 replaced; refused if it holds no call. */
    private static byte[] retargeted(Sled sled, byte[] before, long target) throws PatchException {
        if (!X86Code.isSledCall(before)) {
            throw new PatchException(String.format("%s: patchpoint %d at 0x%x holds no call to retarget [%s]",
                    sled.function(), sled.id(), sled.address(), X86Code.hex(before)));
        }
        byte[] after = before.clone();
        X86Code.putLong(after, X86Code.SLED_TARGET_OFFSET, target);
        return after;
    }

    private byte[] expectedSled(Sled sled) throws PatchException {
        byte[] known = sledBytes.get(sled.address());
        if (known == null || known.length != sled.length()) {
            throw new PatchException(String.format("0x%x: not a sled this patcher found (use sleds or sled first)", sled.address()));
        }
        return known;
    }

    private void writeSledStopped(Sled sled, byte[] after, String what) throws PatchException, StackWalkException {
        whileStopped("rewriting a whole sled", world -> {
            writer.write(sled.address(), expectedSled(sled), after, false, what);
            sledBytes.put(sled.address(), after);
        });
    }

    /** What the patcher does while every mutator is stopped, holding its lock. */
    @FunctionalInterface
    private interface StoppedAction {
        void run(StoppedWorld world) throws PatchException;
    }

    /**
     * Stops the world with the coordinator and runs {@code action} under the patcher's lock (taken
     * only inside the stop, so a mutator compiling lazily never blocks the stop). A refused patch
     * is rethrown once the mutators run again.
     */
    private void whileStopped(String what, StoppedAction action) throws PatchException, StackWalkException {
        if (closed) {
            throw new IllegalStateException("the code patcher is closed");
        }
        SafepointCoordinator c = requireCoordinator(what);
        PatchException[] failed = new PatchException[1];
        c.stopTheWorld(null, 0, world -> {
            lock.lock();
            try {
                checkOpen();
                action.run(world);
            } catch (PatchException e) {
                failed[0] = e;
            } finally {
                try {
                    // Before any mutator runs again, whatever the action managed to write.
                    writer.serializeAfterStop();
                } finally {
                    lock.unlock();
                }
            }
        });
        if (failed[0] != null) {
            throw failed[0];
        }
    }

    // ---- the log -------------------------------------------------------------------------------

    /** The newest patches, oldest first (at most 65,536 are kept; {@link #patchCount} counts all). */
    public List<Patch> patchLog() {
        return writer.log();
    }

    public long patchCount() {
        return writer.patches();
    }

    /** The declared functions by name, with where their stubs lead. */
    public Map<String, Stub> stubs() {
        Map<String, Stub> all = new LinkedHashMap<>();
        for (Entry e : entries) {
            all.put(e.name, e);
        }
        return all;
    }

    /**
     * Makes no more changes, tells the host to link no new object to the stubs, and frees the
     * stubs as soon as no object loaded in the host refers to a declared function: at once if the
     * host is closed (or empty) already, else when the host unloads the last such object. Until
     * then a stub leads where it led; a function that was never compiled fails as a failed lazy
     * compile does (its fallback, else a halt). Closing again does nothing.
     */
    @Override
    public void close() {
        List<String> names;
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            names = List.copyOf(byName.keySet());
        } finally {
            lock.unlock();
        }
        // Taken from the host's symbols under its lock: a load either finished before (its object
        // is among host.objects() below) or starts after and cannot link to a stub.
        for (String name : names) {
            host.undefineIndirectSymbol(name);
        }
        freeStubsOnceUncalled(0);
    }

    /**
     * After {@link #close}: frees the stub blocks and the resolver upcall unless an object loaded
     * in the host, other than {@code unloading} (the key of an object being unloaded, else 0),
     * refers to a declared function. Runs on the closing thread or inside the host's unload; it
     * takes no lock (the host's lock may be held, and the patcher's lock is taken before the
     * host's elsewhere), and the blocks no longer change once closed.
     */
    private void freeStubsOnceUncalled(long unloading) {
        for (JitObject o : host.objects()) {
            if (o.key() != unloading && refersToStub(o)) {
                return;
            }
        }
        if (stubsFreed.compareAndSet(false, true)) {
            host.listeners().remove(listener);
            for (StubBlock b : blocks) {
                b.free();
            }
            arena.close();
        }
    }

    private boolean refersToStub(JitObject o) {
        for (String name : byName.keySet()) {
            if (o.referencedSymbols().contains(name)) {
                return true;
            }
        }
        return false;
    }

    // ---- state ---------------------------------------------------------------------------------

    private static final class Entry implements Stub {
        final String name;
        final LazyCompiler compiler;
        final long fallback;
        final StubBlock block;
        final int index;
        volatile long body;
        volatile JitObject bodyObject;

        Entry(String name, LazyCompiler compiler, long fallback, StubBlock block, int index) {
            this.name = name;
            this.compiler = compiler;
            this.fallback = fallback;
            this.block = block;
            this.index = index;
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public long address() {
            return block.stubAddress(index);
        }

        long lazyEntry() {
            return block.lazyEntry(index);
        }

        void setTarget(long target) {
            block.setTarget(index, target);
        }

        @Override
        public long target() {
            return block.target(index);
        }

        @Override
        public Optional<Long> body() {
            long b = body;
            return b == 0 ? Optional.empty() : Optional.of(b);
        }

        @Override
        public String toString() {
            return block.isFreed() ? String.format("Stub[%s at 0x%x, freed]", name, address())
                    : String.format("Stub[%s at 0x%x -> 0x%x]", name, address(), target());
        }
    }

    /** A call or jmp rel32 that belongs to a stub; {@code address} is its rel32. */
    private static final class Site {
        final long address;
        final long objectKey;
        final String symbol;
        final byte opcode;
        /** Where it led when the patcher first saw it: the stub, or the host's stub to it. */
        final long home;
        volatile long current;

        Site(long address, long objectKey, String symbol, byte opcode, long home) {
            this.address = address;
            this.objectKey = objectKey;
            this.symbol = symbol;
            this.opcode = opcode;
            this.home = home;
            this.current = home;
        }

        boolean aligned() {
            return address % 4 == 0;
        }

        String describe(long want) {
            return (opcode == (byte) X86Code.CALL_REL32 ? "call" : "jmp") + " to " + symbol
                    + (want == home ? " via its stub" : " direct");
        }

        /** The five bytes of the instruction when it leads to {@code target}. */
        byte[] bytes(long target) {
            byte[] b = new byte[5];
            b[0] = opcode;
            X86Code.putInt(b, 1, (int) (target - (address + 4)));
            return b;
        }
    }
}
