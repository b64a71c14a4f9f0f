package dev.safepointkit.patch;

import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.events.LoadedSymbol;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.roots.SafepointCoordinator;
import dev.safepointkit.roots.StackWalkException;
import dev.safepointkit.roots.StoppedWorld;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
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
 * <p>What leads into code keeps it loaded: the host refuses a non-forced {@link JitHost#unload}
 * of an object that a stub or a relinked call site leads into, naming the function (the host does
 * not count those as uses); {@link #unload} moves them first. A retired object, which a thread
 * may still be running, is refused the same way until a {@link #safepoint} frees it (or the
 * patcher is closed).
 *
 * <p>Every write is checked against the bytes the patcher expects there (else nothing is written
 * and a {@link PatchException} says why) and kept in the {@link #patchLog}. Code is never made
 * writable: every write goes through the code's writable alias (W^X by double mapping), and a
 * write while threads run is followed by a core-serializing membarrier.
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
 * <p>This class is the façade; each concern is a class of its own (the package documentation
 * lists them and the lock order). Thread safe.
 */
public final class CodePatcher implements AutoCloseable {
    private final JitHost host;
    private final SafepointCoordinator coordinator;
    private final Consumer<Throwable> failures;
    private final CodeWriter writer;
    /** The patcher's lock: guards every component's changes (see the package documentation). */
    private final ReentrantLock lock = new ReentrantLock();
    /** Owns the resolver upcall stub every lazy entry calls. */
    private final Arena arena = Arena.ofShared();
    private final StubTable stubs;
    private final CallSiteLinker linker;
    private final SledPatcher sleds;
    private final CodeReclaimer reclaimer;
    /**
     * The function whose {@link LazyCompiler} this thread runs now, if any, for any patcher: such a
     * thread holds a patcher's lock and may be inside JIT code, so it must not stop the world.
     */
    private static final ThreadLocal<String> COMPILING = new ThreadLocal<>();
    /**
     * Run by {@link #redefine(Map)} once every plan is made, before the first is applied, under the
     * lock; null but in this package's tests, which change a site there behind the patcher's back.
     */
    Runnable beforeApplying;

    /** Set under the lock by {@link #close}; from then on nothing is patched. */
    private volatile boolean closed;
    /**
     * Set by {@link #close} once it has taken every declared name from the host: from then on no
     * load can link to a stub, and the stubs may be freed once no loaded object refers to one.
     */
    private volatile boolean namesUndefined;
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

        /**
         * A stub or a relinked call site that leads into {@code object} would lead into unmapped
         * code once it is gone: the host does not count them as uses, so the patcher refuses.
         * Takes no lock (the host's is held): reads the volatile targets.
         */
        @Override
        public Optional<String> unloadRefusal(LoadedObject object) {
            Optional<String> reason = stillLeadsInto(object);
            if (reason.isEmpty()) {
                // Paid here, where a failure refuses the unload: objectFreeing cannot.
                writer.serializePending();
            }
            return reason;
        }

        @Override
        public void objectFreeing(LoadedObject object) {
            try {
                writer.objectFreeing(object);
            } finally {
                linker.forget(object);
                sleds.forget(object);
                if (closed) {
                    freeStubsOnceUncalled(object.key());
                }
            }
        }
    };

    /**
     * A patcher without safepoints: see the class comment for what it cannot do. A failed lazy
     * compile is reported on standard error.
     *
     * @param host the host whose code is patched; the patcher becomes one of its required listeners
     * @throws IllegalStateException if this kernel has no membarrier PRIVATE_EXPEDITED_SYNC_CORE,
     *     or this processor no XSAVEC
     */
    public CodePatcher(JitHost host) {
        this(host, null, CodePatcher::report);
    }

    /**
     * A patcher that stops the world with {@code coordinator} for the changes that cannot be made
     * while threads run. Objects the host has loaded already are patchable at once.
     *
     * @param host the host whose code is patched; the patcher becomes one of its required listeners
     * @param coordinator stops the threads that run JIT code when a change cannot be made while
     *     they run; null for none
     * @param failures hears of a lazy compile that failed (on the calling thread, inside JIT code): a
     *     {@link PatchException} naming the function, the compiler's failure its cause; it must not
     *     throw: a failure it cannot take halts the process (status 70) even where the function
     *     has a fallback
     * @throws IllegalStateException if this kernel has no membarrier PRIVATE_EXPEDITED_SYNC_CORE,
     *     or this processor no XSAVEC
     */
    public CodePatcher(JitHost host, SafepointCoordinator coordinator, Consumer<Throwable> failures) {
        this.host = host;
        this.coordinator = coordinator;
        this.failures = failures;
        CoreSync.require();
        this.writer = new CodeWriter(host.codeAliases());
        this.linker = new CallSiteLinker(host, writer, coordinator != null);
        this.sleds = new SledPatcher(writer);
        this.reclaimer = new CodeReclaimer(host);
        try {
            MethodHandle resolve = MethodHandles.lookup().findVirtual(CodePatcher.class, "resolve",
                    MethodType.methodType(long.class, long.class)).bindTo(this);
            this.stubs = new StubTable(Linker.nativeLinker().upcallStub(resolve,
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), arena).address());
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
        host.addListener(listener);
        // Under the host's lock, so that an object unloaded meanwhile (whose objectFreeing found
        // nothing to forget) is not added as live code after it is gone.
        for (JitObject o : host.objects()) {
            try {
                host.whileLoaded(o, () -> {
                    writer.objectLoaded(o.loaded());
                    return null;
                });
            } catch (JitLoadException unloaded) {
                // Gone since the list was taken: nothing of it to patch.
            }
        }
    }

    private static void report(Throwable t) {
        System.err.println("safepointkit patch: " + (t instanceof PatchException ? t.getMessage() : t));
    }

    // ---- stubs and lazy compilation ------------------------------------------------------------

    /**
     * Declares {@code name}: gives it a stub that compiles it on the first call. Declare before
     * loading objects that call it; they are linked to the stub. A failed lazy compile then halts
     * the process (see {@link #declare(String, LazyCompiler, long)}). Takes the patcher's lock,
     * then the host's.
     *
     * @param name the function's symbol, as loaded objects refer to it
     * @param compiler makes the body on the first call, on the calling thread
     * @return the stub, whose address is the function's address from now on
     * @throws JitLoadException if the host already has a symbol of that name
     * @throws IllegalStateException if the patcher is closed
     */
    public Stub declare(String name, LazyCompiler compiler) throws JitLoadException {
        return declare(name, compiler, 0);
    }

    /**
     * As {@link #declare(String, LazyCompiler)}, with a function to continue into when the compile
     * fails: it gets the caller's arguments (an interpreter entry, or one that reports an error to
     * the language). With none ({@code 0}), a failed lazy compile halts the process after
     * reporting: the call has nowhere to go. Takes the patcher's lock, then the host's.
     *
     * @param name the function's symbol, as loaded objects refer to it
     * @param compiler makes the body on the first call, on the calling thread
     * @param fallback the absolute address of a function with the same signature, or 0 for none
     * @return the stub, whose address is the function's address from now on
     * @throws JitLoadException if the host already has a symbol of that name
     * @throws IllegalStateException if the patcher is closed
     */
    public Stub declare(String name, LazyCompiler compiler, long fallback) throws JitLoadException {
        lock.lock();
        try {
            checkOpen();
            if (stubs.contains(name)) {
                throw new JitLoadException("'" + name + "' is already declared");
            }
            // The entry is findable by id before the host has the symbol: from then a concurrent
            // load can link to the stub and call it, and resolve must find the entry. By name only
            // after the host accepted: a refused declare leaves nothing that compile, relink or a
            // later declare (which reuses the slot) could find.
            StubEntry e = stubs.add(name, compiler, fallback);
            try {
                host.defineIndirectSymbol(name, MemorySegment.ofAddress(e.address()));
            } catch (JitLoadException | RuntimeException ex) {
                stubs.removeLast(e);
                throw ex;
            }
            stubs.publish(e);
            return e;
        } finally {
            lock.unlock();
        }
    }

    /**
     * The stub of a declared function. Any thread; never blocks.
     *
     * @param name a function name
     * @return its stub; empty if {@code name} was never declared
     */
    public Optional<Stub> stub(String name) {
        return stubs.byName(name).map(e -> e);
    }

    /**
     * Compiles {@code name} now, from Java, if it has no body yet: the stub and its call sites
     * move to the new body as after a first call. Runs the compiler on this thread, under the
     * patcher's lock.
     *
     * @param name a declared function
     * @return the absolute address of its body, new or the one it had
     * @throws PatchException if the compiler fails or returns no object, the object does not
     *     define {@code name} as a global function, or a call site is not as the patcher left it;
     *     then nothing changes
     * @throws IllegalArgumentException if {@code name} is not declared
     * @throws IllegalStateException if the patcher is closed
     */
    public long compile(String name) throws PatchException {
        lock.lock();
        try {
            checkOpen();
            StubEntry e = entry(name);
            try {
                if (e.body == 0) {
                    install(e, runCompiler(e));
                }
                return e.body;
            } catch (PatchException ex) {
                throw ex;
            } catch (Exception ex) {
                throw new PatchException("compiling '" + name + "' failed: " + ex.getMessage(), ex);
            }
        } finally {
            lock.unlock();
        }
    }

    /** The reentry upcall: never throws. */
    private long resolve(long id) {
        StubEntry e = null;
        try {
            lock.lock();
            try {
                e = stubs.byId(id);
                if (e.body == 0) {
                    checkOpen();
                    install(e, runCompiler(e));
                }
                return e.body;
            } finally {
                lock.unlock();
            }
        } catch (Throwable t) {
            String function = e == null ? "stub " + id : e.name;
            // The handler hears which function failed: a compiler's own exception may not say.
            PatchException failure = new PatchException("lazy compile of '" + function + "' failed: "
                    + (t.getMessage() == null ? t.toString() : t.getMessage()), t);
            try {
                failures.accept(failure);
            } catch (Throwable unheard) {
                // Thrown through the upcall it would end the JVM without a word; and a failure
                // that reached no one does not let the call go on into the fallback as if it had.
                return halt(failure.getMessage() + "; the failure handler threw " + unheard + "; halting");
            }
            if (e != null && e.fallback != 0) {
                return e.fallback;
            }
            return halt("lazy compile of '" + function + "' failed and it has no fallback; halting: " + t);
        }
    }

    /** Ends the process from inside a stub's upcall, which has no caller to throw to: prints {@code message}, then status 70. */
    private static long halt(String message) {
        System.err.println("safepointkit patch: " + message);
        Runtime.getRuntime().halt(70);
        return 0;
    }

    private JitObject runCompiler(StubEntry e) throws Exception {
        String outer = COMPILING.get();
        COMPILING.set(e.name);
        JitObject o;
        try {
            o = e.compiler.compile(e.name);
        } finally {
            COMPILING.set(outer);
        }
        if (o == null) {
            throw new PatchException("the compiler of '" + e.name + "' returned no object");
        }
        return o;
    }

    /**
     * Points the stub, then its sites, at the body {@code object} defines. All or nothing: every
     * site is checked before the stub or any site changes. Holds the lock, and takes the host's
     * while it writes ({@code JitHost.whileLoaded}): a non-forced {@code host.unload} asks the
     * patcher's listener under that lock whether anything leads into the object, so it either
     * sees the stub lead there and is refused, or has unloaded the object before, and then this
     * refuses.
     */
    private RelinkReport install(StubEntry e, JitObject object) throws PatchException {
        long body = bodyIn(object, e.name);
        CallSiteLinker.SitePlan plan = linker.plan(e, body);
        reclaimer.checkNotFreeing(object);
        return install(e, object, body, plan);
    }

    /** Applies {@code plan}, made for {@code body} in {@code object}, and points the stub there. Holds the lock. */
    private RelinkReport install(StubEntry e, JitObject object, long body, CallSiteLinker.SitePlan plan) throws PatchException {
        try {
            return host.whileLoaded(object, () -> {
                // The sites first: all or nothing, so a refusal leaves the stub and the body as
                // they were. Until the stub follows, sites and stub lead to different bodies,
                // which is as safe as either.
                RelinkReport r = plan.apply();
                // A body again: a retired object that came back must not be freed under its callers.
                reclaimer.revive(object);
                e.setTarget(body);
                e.body = body;
                e.bodyObject = object;
                return r;
            });
        } catch (JitLoadException gone) {
            throw new PatchException("'" + e.name + "' cannot lead into " + object.name() + ": "
                    + gone.getMessage(), gone);
        }
    }

    private static long bodyIn(JitObject object, String name) throws PatchException {
        LoadedSymbol s = object.loaded().symbol(name).orElseThrow(
                () -> new PatchException(object.name() + " does not define '" + name + "'"));
        if (!s.function() || !s.global()) {
            throw new PatchException(object.name() + ": '" + name + "' is not a global function");
        }
        return s.address();
    }

    /** Holds the lock: the entry found is a declared function until the lock is released. */
    private StubEntry entry(String name) {
        StubEntry e = stubs.byName(name).orElseThrow(() -> new IllegalArgumentException("'" + name + "' is not declared"));
        if (!stubs.isPublished(e)) {
            throw new IllegalStateException("'" + name + "' has a stub entry that is not declared (id " + e.id + ")");
        }
        return e;
    }

    // ---- call sites ----------------------------------------------------------------------------

    /**
     * Rewrites every call site of {@code name} that goes through its stub into a direct call to
     * its body. Nothing to do while it has no body. Aligned sites are rewritten now, while threads
     * run; the others wait for the next safepoint (or stay on the stub without a coordinator).
     * Takes the patcher's lock.
     *
     * @param name a declared function
     * @return what happened to each site; all zero while it has no body
     * @throws PatchException if a site is not as the patcher left it; then no site changes
     * @throws IllegalArgumentException if {@code name} is not declared
     * @throws IllegalStateException if the patcher is closed
     */
    public RelinkReport relink(String name) throws PatchException {
        lock.lock();
        try {
            checkOpen();
            StubEntry e = entry(name);
            return e.body == 0 ? new RelinkReport(0, 0, 0, 0, 0, 0) : linker.plan(e, e.body).apply();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Sends every relinked call site of {@code name} back through its stub; the stub keeps leading
     * to the body. The way back from {@link #relink}, for a runtime that wants calls to pass one
     * place again (to count them, or before it redefines often). Takes the patcher's lock.
     *
     * @param name a declared function
     * @return what happened to each site ({@code patched} and {@code deferred} count the sites sent
     *     back)
     * @throws PatchException if a site is not as the patcher left it; then no site changes
     * @throws IllegalArgumentException if {@code name} is not declared
     * @throws IllegalStateException if the patcher is closed
     */
    public RelinkReport unlink(String name) throws PatchException {
        lock.lock();
        try {
            checkOpen();
            StubEntry e = entry(name);
            return linker.plan(e, 0).apply();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Makes {@code object}'s definition of {@code name} its body: the stub and every relinked site
     * move to it. The previous body's object is retired once no declared function has its body
     * there; {@link #safepoint} frees it. All or nothing: if a site cannot be rewritten, nothing
     * changes. Takes the patcher's lock.
     *
     * @param name a declared function
     * @param object a loaded object that defines {@code name} as a global function
     * @return what happened to each call site of {@code name}
     * @throws PatchException if {@code object} does not define {@code name} as a global function,
     *     a safepoint is freeing it right now, or a site is not as the patcher left it
     * @throws IllegalArgumentException if {@code name} is not declared
     * @throws IllegalStateException if the patcher is closed
     */
    public RelinkReport redefine(String name, JitObject object) throws PatchException {
        lock.lock();
        try {
            checkOpen();
            StubEntry e = entry(name);
            JitObject old = e.bodyObject;
            RelinkReport r = install(e, object);
            retireIfUnused(old);
            return r;
        } finally {
            lock.unlock();
        }
    }

    /**
     * The patcher's lock, held by one thread until {@link #close}d; {@link #hold} gives it.
     */
    public final class Held implements AutoCloseable {
        private Held() {
        }

        /** Releases the lock; on the thread that took it. */
        @Override
        public void close() {
            lock.unlock();
        }
    }

    /**
     * Takes the patcher's lock for a client that prepares changes which must be seen together:
     * until the result is closed, no lazy compile, relink, redefinition or safepoint of this
     * patcher runs on another thread, and this thread may call every method of the patcher (the
     * lock is reentrant). A lazy compile runs under this lock, so a client that also has a lock
     * of its own which a lazy compile takes must take this one first. Blocks while another thread
     * holds it.
     *
     * @return the hold, to close on this thread (try-with-resources)
     * @throws IllegalStateException if the patcher is closed
     */
    public Held hold() {
        lock.lock();
        try {
            checkOpen();
        } catch (RuntimeException closed) {
            lock.unlock();
            throw closed;
        }
        return new Held();
    }

    /**
     * Makes each object its function's body, as {@link #redefine(String, JitObject)} does one, all
     * or nothing: every function is checked to be declared and defined by its object, and every
     * call site to hold what the patcher wrote there, before anything changes; should a site still
     * refuse its rewrite, the functions moved before it go back to the bodies they had. The previous
     * bodies' objects are retired once no declared function has its body there. Takes the patcher's
     * lock: no lazy compile or other redefinition sees some of the functions moved and not others.
     *
     * @param bodies each function and the loaded object that defines it, moved in this order
     * @return each function's report, in the same order
     * @throws PatchException as {@link #redefine(String, JitObject)}, for the first function that
     *     cannot move; then no function has moved
     * @throws IllegalArgumentException if a function is not declared; then no function has moved
     * @throws IllegalStateException if the patcher is closed
     */
    public Map<String, RelinkReport> redefine(Map<String, JitObject> bodies) throws PatchException {
        lock.lock();
        try {
            checkOpen();
            int n = bodies.size();
            StubEntry[] entries = new StubEntry[n];
            JitObject[] objects = new JitObject[n];
            long[] targets = new long[n];
            CallSiteLinker.SitePlan[] plans = new CallSiteLinker.SitePlan[n];
            // Where each function leads now, to go back to should a later one refuse.
            JitObject[] oldObjects = new JitObject[n];
            long[] oldBodies = new long[n];
            long[] oldTargets = new long[n];
            int i = 0;
            for (Map.Entry<String, JitObject> b : bodies.entrySet()) {
                entries[i] = entry(b.getKey());
                objects[i] = b.getValue();
                targets[i] = bodyIn(objects[i], b.getKey());
                reclaimer.checkNotFreeing(objects[i]);
                plans[i] = linker.plan(entries[i], targets[i]);
                oldObjects[i] = entries[i].bodyObject;
                oldBodies[i] = entries[i].body;
                oldTargets[i] = entries[i].target();
                i++;
            }
            if (beforeApplying != null) {
                beforeApplying.run();
            }
            Map<String, RelinkReport> reports = new LinkedHashMap<>();
            int moved = 0;
            try {
                for (; moved < n; moved++) {
                    reports.put(entries[moved].name, install(entries[moved], objects[moved], targets[moved], plans[moved]));
                }
            } catch (PatchException refused) {
                for (int k = moved - 1; k >= 0; k--) {
                    try {
                        moveBack(entries[k], oldObjects[k], oldBodies[k], oldTargets[k]);
                    } catch (PatchException | RuntimeException stuck) {
                        refused.addSuppressed(new PatchException("'" + entries[k].name + "' stays on "
                                + objects[k].name() + ": it could not go back to its previous body", stuck));
                    }
                }
                throw refused;
            }
            for (JitObject old : oldObjects) {
                retireIfUnused(old);
            }
            return reports;
        } finally {
            lock.unlock();
        }
    }

    /** Points {@code e}'s sites and stub back where they led before a redefinition moved them. Holds the lock. */
    private void moveBack(StubEntry e, JitObject oldObject, long oldBody, long oldTarget) throws PatchException {
        linker.plan(e, oldBody).apply();
        e.setTarget(oldTarget);
        e.body = oldBody;
        e.bodyObject = oldObject;
    }

    /**
     * Deletes a module: every declared function whose body {@code object} holds goes back to its
     * lazy entry (the next call compiles it again), and every call site that reached into the
     * object goes back to the stub. With a coordinator the object is then freed at a safepoint
     * (or later, by {@link #safepoint}, while a stopped thread still runs it); without one it is
     * freed at once, and the caller must know that no thread runs it. All or nothing: if a site
     * cannot be rewritten, nothing changes. With a coordinator this stops the world: call it from a
     * thread outside JIT code.
     *
     * @param object an object the host loaded
     * @return whether the object is freed; false when a stopped thread still runs it, and a later
     *     {@link #safepoint} frees it
     * @throws PatchException if a site is not as the patcher left it; then nothing changes
     * @throws JitLoadException if the host refuses the unload: without a coordinator, when other
     *     loaded objects still refer to its globals (those calls are not the patcher's to move);
     *     with one, as {@link #safepoint} throws it
     * @throws StackWalkException if the stop fails, or a stopped stack cannot be walked; the object
     *     then stays retired
     * @throws IllegalStateException if the patcher is closed
     */
    public boolean unload(JitObject object) throws PatchException, JitLoadException, StackWalkException {
        if (coordinator != null) {
            refuseInsideCompiler("unloading " + object.name());
        }
        lock.lock();
        try {
            checkOpen();
            // Every site of every function it holds is checked first: a refusal changes nothing,
            // so no direct call into the object survives an unload that went through.
            Map<StubEntry, CallSiteLinker.SitePlan> plans = new LinkedHashMap<>();
            for (StubEntry e : stubs.all()) {
                if (e.bodyObject == object) {
                    plans.put(e, linker.plan(e, 0));
                }
            }
            // Every function's sites back onto its stub first (each all or nothing; a refusal
            // leaves every stub, and so every body, as it was), then the stubs onto their lazy entries.
            for (CallSiteLinker.SitePlan p : plans.values()) {
                p.apply();
            }
            for (StubEntry e : plans.keySet()) {
                e.setTarget(e.lazyEntry());
                e.body = 0;
                e.bodyObject = null;
            }
            if (coordinator != null) {
                reclaimer.retire(object);
            } else {
                // Unloaded below, outside the lock (the host's lock comes after it): until then no
                // redefine or lazy compile may make it a body again.
                reclaimer.markFreeing(object);
            }
        } finally {
            lock.unlock();
        }
        if (coordinator == null) {
            try {
                host.unload(object, false);
            } finally {
                lock.lock();
                try {
                    reclaimer.unloaded(object, host.objects().contains(object), false);
                } finally {
                    lock.unlock();
                }
            }
            return !host.objects().contains(object);
        }
        safepoint();
        return !host.objects().contains(object);
    }

    /**
     * Objects that no longer hold a body but may still be running: {@link #safepoint} frees each
     * once no stopped stack refers into it. Takes the patcher's lock.
     *
     * @return an immutable snapshot, in the order they were retired
     */
    public List<JitObject> retired() {
        lock.lock();
        try {
            return reclaimer.retired();
        } finally {
            lock.unlock();
        }
    }

    /** Holds the lock. */
    private void retireIfUnused(JitObject old) {
        if (old == null || reclaimer.isRetired(old)) {
            return;
        }
        for (StubEntry e : stubs.all()) {
            if (e.bodyObject == old) {
                return;
            }
        }
        reclaimer.retire(old);
    }

    /**
     * Where the call at a site leads now, as the patcher last set it. Any thread; never blocks.
     *
     * @param siteAddress the absolute address of the site's rel32 ({@link dev.safepointkit.host.CallSite#address})
     * @return the absolute target; empty if the site does not call a declared function's stub or body
     */
    public Optional<Long> siteTarget(long siteAddress) {
        return linker.siteTarget(siteAddress);
    }

    /**
     * Pays the barrier that relinks made while threads ran still owe, if any: once this returns,
     * every thread has serialized and runs no old bytes of any site rewritten before the call.
     * Never needed for safety (the patcher pays before any code is unmapped and at every stop); a
     * runtime calls it when it needs that guarantee itself, say before reusing memory an old
     * target pointed into that the host does not own. Any thread.
     */
    public void serializeNow() {
        writer.serializePending();
    }

    /** {@return whether a relink made while threads ran still owes its core-serializing barrier} */
    public boolean barrierOwed() {
        return writer.barrierOwed();
    }

    /** {@return the number of unaligned sites waiting for a safepoint to be rewritten} */
    public int pendingSites() {
        return linker.pendingSites();
    }

    // ---- safepoints ----------------------------------------------------------------------------

    /**
     * Stops every mutator, rewrites the call sites that wait for a safepoint, and frees the retired
     * objects that no stopped thread's stack refers into; listeners hear of each. Call it from a
     * thread outside JIT code. If an unload fails, the others are still freed, the failed one stays
     * retired (unless it is gone from the host already), and the first failure is thrown.
     *
     * @return the number of objects freed
     * @throws PatchException if a waiting site is not as the patcher left it: no waiting site is
     *     written, all still wait; the retired objects are still freed, except those a waiting site
     *     leads into; thrown once, not again at later stops while the same bytes are found there
     * @throws StackWalkException if the stop fails ({@link dev.safepointkit.roots.StopTimeoutException}
     *     when a mutator does not park in time), or a stopped stack cannot be walked
     * @throws JitLoadException if the host refuses to unload a freeable object; the others are
     *     still freed, and later failures are suppressed in this one
     * @throws IllegalStateException if the patcher is closed or has no coordinator
     */
    public int safepoint() throws PatchException, StackWalkException, JitLoadException {
        List<JitObject> free = new ArrayList<>();
        List<PatchException> refused = new ArrayList<>();
        whileStopped("a safepoint", world -> {
            List<Long> pinned = new ArrayList<>();
            try {
                linker.applyPending(refused, pinned);
            } finally {
                writer.serializeAfterStop();
            }
            // A changed waiting site holds up its own batch only: what it leads to stays loaded.
            free.addAll(reclaimer.freeable(world, site -> linker.siteTarget(site).isPresent(), pinned));
        });
        // Nothing leads into these any more and no thread runs them: unmap them, outside the
        // patcher's lock (the host's lock comes after the patcher's, and its listeners run inside).
        JitLoadException failed = null;
        int freed = 0;
        int done = 0;
        try {
            for (; done < free.size(); done++) {
                JitObject o = free.get(done);
                boolean hostRefused = false;
                try {
                    host.unload(o, false);
                    freed++;
                } catch (JitLoadException e) {
                    hostRefused = true;
                    if (failed == null) {
                        failed = e;
                    } else {
                        failed.addSuppressed(e);
                    }
                } finally {
                    lock.lock();
                    try {
                        reclaimer.unloaded(o, host.objects().contains(o), hostRefused);
                    } finally {
                        lock.unlock();
                    }
                }
            }
        } finally {
            // Whatever went wrong (an error the host threw), none of these stays marked as being freed.
            lock.lock();
            try {
                for (int k = done + 1; k < free.size(); k++) {
                    reclaimer.unloaded(free.get(k), host.objects().contains(free.get(k)), false);
                }
            } finally {
                lock.unlock();
            }
        }
        if (!refused.isEmpty()) {
            PatchException first = refused.getFirst();
            if (failed != null) {
                first.addSuppressed(failed);
            }
            throw first;
        }
        if (failed != null) {
            throw failed;
        }
        return freed;
    }

    /**
     * Rewrites the call sites that wait for a safepoint, inside a stop someone else made (a
     * collector's {@code WorldAction}): {@code world} shows that every mutator is stopped. Call it
     * on the thread that runs the action; it takes the patcher's lock. It frees no retired object.
     *
     * @param world the stop in progress
     * @return the number of sites rewritten
     * @throws PatchException if a waiting site is not as the patcher left it: nothing is written,
     *     every site still waits (reported once while the same bytes are found there)
     * @throws IllegalArgumentException if {@code world} is null
     * @throws IllegalStateException if the patcher is closed, or {@code world} is not a stop of
     *     this patcher's coordinator in progress on this thread ({@link StoppedWorld#isStopOf})
     */
    public int applyPending(StoppedWorld world) throws PatchException {
        if (world == null) {
            throw new IllegalArgumentException("call inside a stop: pass its StoppedWorld");
        }
        if (coordinator == null || !world.isStopOf(coordinator)) {
            // Its mutators may be running: unaligned sites must not be written under them.
            throw new IllegalStateException("applyPending needs a stop of this patcher's coordinator in progress, on"
                    + " the thread that runs its action: this one " + (coordinator == null ? "has no coordinator"
                    : "is over, another coordinator's, or runs on another thread"));
        }
        lock.lock();
        try {
            checkOpen();
            List<PatchException> refused = new ArrayList<>();
            int written;
            try {
                written = linker.applyPending(refused, new ArrayList<>());
            } finally {
                writer.serializeAfterStop();
            }
            if (!refused.isEmpty()) {
                throw refused.getFirst();
            }
            return written;
        } finally {
            lock.unlock();
        }
    }

    /** Holds the lock. */
    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the code patcher is closed");
        }
    }

    /**
     * The lock order forbids a stop of the world from inside a lazy compile: the compiling thread
     * holds the patcher's lock, which a stop must never wait for, and is often inside JIT code,
     * where the stop would wait for the thread itself.
     */
    private static void refuseInsideCompiler(String what) {
        String compiling = COMPILING.get();
        if (compiling != null) {
            throw new IllegalStateException(what + " stops the world, which the LazyCompiler of '" + compiling
                    + "' may not do: it runs under the patcher's lock, often inside JIT code; stop the world after"
                    + " the compile returns, from a thread outside JIT code");
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
     * NOPs right after a sled would be counted as its own. Only a sled found here or by
     * {@link #sled} can be rewritten.
     *
     * @param object a loaded object with stack maps
     * @param id the patchpoint ID, as given to {@code llvm.experimental.patchpoint}
     * @return the sleds, in stack map order; empty if there is no patchpoint with {@code id}
     * @throws PatchException if the bytes at a patchpoint's offset are neither NOPs nor the call form
     */
    public List<Sled> sleds(JitObject object, long id) throws PatchException {
        lock.lock();
        try {
            return sleds.find(object, id);   // records the bytes found: a write then expects them
        } finally {
            lock.unlock();
        }
    }

    /**
     * The one sled of patchpoint {@code id} in {@code object}, compiled with {@code numBytes}.
     *
     * @param object a loaded object with stack maps
     * @param id the patchpoint ID
     * @param numBytes the numBytes argument the patchpoint was compiled with, at least 1
     * @return the sled, {@code numBytes} long
     * @throws PatchException if {@code object} has no patchpoint or more than one with {@code id},
     *     or the bytes there are not a sled of {@code numBytes}
     */
    public Sled sled(JitObject object, long id, int numBytes) throws PatchException {
        lock.lock();
        try {
            return sleds.one(object, id, numBytes);
        } finally {
            lock.unlock();
        }
    }

    /**
     * The target the sled calls now, decoded from its bytes.
     *
     * @param sled a sled found by {@link #sleds} or {@link #sled}
     * @return the absolute target; empty if the sled is not in the call form
     * @throws PatchException if the sled's code is no longer loaded
     */
    public Optional<Long> sledTarget(Sled sled) throws PatchException {
        return sleds.target(sled);
    }

    /**
     * Rewrites the whole sled into {@code movabs $target, %r11; call *%r11} and NOPs, at a
     * safepoint: stops the world, so call it from a thread outside JIT code.
     *
     * @param sled a sled found by {@link #sleds} or {@link #sled}, at least 13 bytes
     * @param target the absolute address to call
     * @throws PatchException if the sled is too short, was not found by this patcher, or its bytes
     *     are not as the patcher left them; nothing is written
     * @throws StackWalkException if the stop fails
     * @throws IllegalStateException if the patcher is closed or has no coordinator
     */
    public void callFromSled(Sled sled, long target) throws PatchException, StackWalkException {
        byte[] after = SledPatcher.callForm(sled, target);
        String what = String.format("sled %d in %s calls 0x%x", sled.id(), sled.function(), target);
        whileStopped("rewriting a whole sled", world -> sleds.write(sled, before -> after, false, what));
    }

    /**
     * Puts NOPs back over the whole sled, at a safepoint: stops the world, so call it from a thread
     * outside JIT code.
     *
     * @param sled a sled found by {@link #sleds} or {@link #sled}
     * @throws PatchException if the sled was not found by this patcher or its bytes are not as the
     *     patcher left them; nothing is written
     * @throws StackWalkException if the stop fails
     * @throws IllegalStateException if the patcher is closed or has no coordinator
     */
    public void restoreSled(Sled sled) throws PatchException, StackWalkException {
        byte[] after = X86Code.nops(sled.length());
        String what = "sled " + sled.id() + " in " + sled.function() + " back to NOPs";
        whileStopped("rewriting a whole sled", world -> sleds.write(sled, before -> after, false, what));
    }

    /**
     * Changes the target of a sled in the call form. When the imm64 is 8-byte aligned this is one
     * atomic store while threads run; otherwise it waits for a safepoint. Either way the new bytes
     * are made from the sled as it is when the write happens (under the lock, inside the stop): a
     * restore that ran just before is refused, not silently undone.
     *
     * @param sled a sled in the call form, found by {@link #sleds} or {@link #sled}
     * @param target the new absolute address to call
     * @throws PatchException if the sled holds no call, was not found by this patcher, or its bytes
     *     are not as the patcher left them; nothing is written
     * @throws StackWalkException if a stop was needed and failed
     * @throws IllegalStateException if the patcher is closed, or a stop is needed and it has no
     *     coordinator
     */
    public void retargetSled(Sled sled, long target) throws PatchException, StackWalkException {
        String what = String.format("sled %d in %s retargeted to 0x%x", sled.id(), sled.function(), target);
        SledPatcher.Change retarget = before -> SledPatcher.retargeted(sled, before, target);
        if (SledPatcher.retargetIsAtomic(sled)) {
            lock.lock();
            try {
                checkOpen();
                sleds.write(sled, retarget, true, what);
            } finally {
                lock.unlock();
            }
        } else {
            whileStopped("retargeting a sled", world -> sleds.write(sled, retarget, false, what));
        }
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
        refuseInsideCompiler(what);
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

    /**
     * The newest patches, oldest first (at most 65,536 are kept; {@link #patchCount} counts all).
     * Any thread.
     *
     * @return an immutable copy of the log
     */
    public List<Patch> patchLog() {
        return writer.log();
    }

    /** {@return the number of writes into code this patcher made, including those the log dropped} */
    public long patchCount() {
        return writer.patches();
    }

    /**
     * The declared functions by name, with where their stubs lead. Any thread; never blocks.
     *
     * @return a new map, in declaration order; its stubs are live views, not snapshots
     */
    public Map<String, Stub> stubs() {
        Map<String, Stub> all = new LinkedHashMap<>();
        for (StubEntry e : stubs.all()) {
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
            names = List.copyOf(stubs.names());
        } finally {
            lock.unlock();
        }
        // Taken from the host's symbols under its lock: a load either finished before (its object
        // is among host.objects() below) or starts after and cannot link to a stub.
        for (String name : names) {
            host.undefineIndirectSymbol(name);
        }
        namesUndefined = true;
        freeStubsOnceUncalled(0);
    }

    /**
     * After {@link #close}: frees the stub blocks and the resolver upcall unless an object loaded
     * in the host, other than {@code unloading} (the key of an object being unloaded, else 0),
     * refers to a declared function. Runs on the closing thread or inside the host's unload; it
     * takes no lock (the host's lock may be held, and the patcher's lock is taken before the
     * host's elsewhere), and the blocks no longer change once closed.
     */
    /** Whether the stub blocks are still mapped (for tests). */
    boolean stubsStillMapped() {
        return !stubsFreed.get();
    }

    private void freeStubsOnceUncalled(long unloading) {
        if (!namesUndefined) {
            return;   // a load may still link to a stub: close frees them once the names are gone
        }
        for (JitObject o : host.objects()) {
            if (o.key() != unloading && refersToStub(o)) {
                return;
            }
        }
        if (stubsFreed.compareAndSet(false, true)) {
            writer.serializePending();   // no thread may still run bytes that lead into a stub
            host.listeners().remove(listener);
            stubs.free();
            arena.close();
        }
    }

    /**
     * What of the patcher's leads into {@code object}'s code: a stub (while it can be called: once
     * closed, only while a loaded object other than this one refers to its function) or a call
     * site in another object that was relinked there. Empty once the stubs are freed.
     */
    private Optional<String> stillLeadsInto(LoadedObject object) {
        if (stubsFreed.get()) {
            return Optional.empty();
        }
        // Once closed, no thread runs JIT code (close's contract): a retired object may go then.
        if (!closed && reclaimer.awaitsAStop(object.key())) {
            return Optional.of("retired by the code patcher and maybe still running; CodePatcher.safepoint frees it once no"
                    + " stopped stack runs it");
        }
        List<LoadedSection> code = object.sections().stream().filter(LoadedSection::executable).toList();
        for (StubEntry e : stubs.all()) {
            if (!stubs.isPublished(e)) {
                continue;
            }
            long target = e.target();
            JitObject body = e.bodyObject;
            boolean into = (body != null && body.key() == object.key()) || code.stream().anyMatch(s -> s.contains(target));
            if (into && (!closed || calledFromOtherThan(e.name, object.key()))) {
                return Optional.of(String.format("the stub of '%s' leads into it (0x%x); unload it with"
                        + " CodePatcher.unload or redefine '%s' first", e.name, target, e.name));
            }
        }
        Optional<String> site = linker.siteInto(object.key(), code);
        return site.map(s -> s + " (relinked by the code patcher); unload it with CodePatcher.unload");
    }

    private boolean calledFromOtherThan(String name, long objectKey) {
        for (JitObject o : host.objects()) {
            if (o.key() != objectKey && o.referencedSymbols().contains(name)) {
                return true;
            }
        }
        return false;
    }

    private boolean refersToStub(JitObject o) {
        for (String name : stubs.names()) {
            if (o.referencedSymbols().contains(name)) {
                return true;
            }
        }
        return false;
    }
}
