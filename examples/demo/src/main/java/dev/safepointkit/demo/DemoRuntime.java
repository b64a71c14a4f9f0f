package dev.safepointkit.demo;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.events.LoadedSymbol;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.host.ProcessUnwinder;
import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.UnwindPlan;
import dev.safepointkit.stackmap.FunctionRecord;
import dev.safepointkit.stackmap.StackMap;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.roots.FrameUnwinder;
import dev.safepointkit.roots.Mutator;
import dev.safepointkit.roots.SafepointCoordinator;
import dev.safepointkit.roots.StackWalkException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * The demo's runtime: a JIT host whose loaded code is registered for stack walking, a
 * stop-the-world coordinator, a {@link SemispaceHeap}, and the runtime functions of
 * {@code runtime.ll} bound to Java upcalls ({@code spk_poll}, {@code spk_alloc},
 * {@code spk_collect}, {@code spk_bad_object}, and {@code spk_exit}, {@code spk_return} and
 * {@code spk_nested} for runs nested through Java).
 *
 * <p>A failing collection ends the process with a message on stderr and exit status 3: the JIT
 * code that asked for memory cannot run on without it. A walk error is found before the heap is
 * touched (the walk validates every stack first); a root to no object is found while copying,
 * with the heap half copied.
 * A bad object found by JIT code (its header is poison) is recorded in {@link #failures()}.
 *
 * <p>runtime.o's poll, slow-path and exit functions save every callee-saved register of the JIT
 * frame that called them; their unwind plans, read from the registry once runtime.o is loaded,
 * tell the coordinator where ({@link SafepointCoordinator#pollSaves}), so code that keeps GC
 * pointers in callee-saved registers (binarytrees-gcregs.o) is walked as precisely as code that
 * spills them.
 */
public final class DemoRuntime implements AutoCloseable {
    public static final long BUFFER_BYTES = 64 * 1024;

    private final JitHost host = new JitHost();
    private final SafepointRegistry registry = new SafepointRegistry();
    private final SafepointCoordinator coordinator = new SafepointCoordinator(SemispaceHeap.CLIENT_BYTES);
    private final SemispaceHeap heap;
    private final Arena upcalls = Arena.ofShared();
    private final Map<Long, Mutator> byContext = new ConcurrentHashMap<>();
    private final List<String> failures = Collections.synchronizedList(new ArrayList<>());
    /** Incremented by the collecting thread at each cross-check; read by any thread. */
    private final LongAdder crossChecks = new LongAdder();
    /** The entry {@code trees(ctx, depth, iterations)} that spk_nested enters again; set before nested code runs. */
    private volatile MethodHandle nestedEntry;

    public DemoRuntime(long semispaceBytes, int handles) throws JitLoadException {
        this(semispaceBytes, handles, false);
    }

    /**
     * @param checkUnwind the walker's debug check: every walk's frames are compared with the
     *     process unwinder's (jit-host's {@link ProcessUnwinder}); a difference fails the collection
     */
    public DemoRuntime(long semispaceBytes, int handles, boolean checkUnwind) throws JitLoadException {
        heap = new SemispaceHeap(registry, semispaceBytes, BUFFER_BYTES, handles,
                checkUnwind ? countingCrossChecks(ProcessUnwinder.get()) : null);
        host.addListener(new RegistryListener(registry));
        ValueLayout.OfLong j = ValueLayout.JAVA_LONG;
        var address = ValueLayout.ADDRESS;
        host.defineUpcall("spk_poll", coordinator.pollUpcall(t -> fatal("a collection at a poll failed", t)),
                FunctionDescriptor.ofVoid(address, address), upcalls);
        host.defineUpcall("spk_alloc", bound("allocUpcall", long.class, MemorySegment.class, MemorySegment.class, long.class, long.class),
                FunctionDescriptor.of(j, address, address, j, j), upcalls);
        host.defineUpcall("spk_collect", bound("collectUpcall", void.class, MemorySegment.class, MemorySegment.class),
                FunctionDescriptor.ofVoid(address, address), upcalls);
        host.defineUpcall("spk_bad_object", bound("badObjectUpcall", void.class, MemorySegment.class, long.class, long.class),
                FunctionDescriptor.ofVoid(address, j, j), upcalls);
        host.defineUpcall("spk_exit", coordinator.exitUpcall(t -> fatal("an exit from JIT code was refused", t)),
                SafepointCoordinator.SLOT_UPCALL, upcalls);
        host.defineUpcall("spk_return", coordinator.returnUpcall(t -> fatal("a return into JIT code was refused", t)),
                SafepointCoordinator.CONTEXT_UPCALL, upcalls);
        host.defineUpcall("spk_nested", bound("nestedUpcall", long.class, MemorySegment.class, int.class),
                FunctionDescriptor.of(j, address, ValueLayout.JAVA_INT), upcalls);
        JitObject runtimeObject = load("runtime.o", bundled("runtime.o"));
        coordinator.pollSaves(pollPlan(runtimeObject));
    }

    /** The process unwinder, counting each run of JIT frames the walker compares with it. */
    private FrameUnwinder countingCrossChecks(ProcessUnwinder unwinder) {
        return (slot, calleeSaved, known, out) -> {
            crossChecks.increment();
            return unwinder.frames(slot, calleeSaved, known, out);
        };
    }

    /**
     * How many runs of JIT frames the walker's debug check compared with the process unwinder.
     *
     * @return 0 without {@code checkUnwind}; any thread may call it
     */
    public long crossChecks() {
        return crossChecks.sum();
    }

    /** The functions of runtime.ll that hand Java a return-address slot into the JIT frame that called them. */
    private static final Set<String> POLL_FUNCTIONS = Set.of("rt_poll", "rt_alloc", "rt_collect", "rt_nested_trees");

    /**
     * The unwind plan at every call out of runtime.o's poll, slow-path and exit functions: where
     * each saved the JIT frame's callee-saved registers. They must all agree, and save all six.
     */
    private long pollPlan(JitObject runtimeObject) {
        StackMapSection maps = runtimeObject.loaded().stackMaps().orElseThrow(
                () -> new IllegalStateException("runtime.o has no stack maps: its calls out are not statepoints"));
        long plan = UnwindPlan.NONE;
        Set<String> seen = new HashSet<>();
        Frame frame = new Frame();
        for (LoadedSymbol symbol : runtimeObject.loaded().symbols()) {
            if (!symbol.function() || !POLL_FUNCTIONS.contains(symbol.name())) {
                continue;
            }
            for (StackMap map : maps.stackMaps()) {
                for (int f = 0; f < map.functionCount(); f++) {
                    FunctionRecord fn = map.function(f);
                    if (fn.functionAddress() != symbol.address()) {
                        continue;
                    }
                    for (int r = 0; r < fn.recordCount(); r++) {
                        long pc = symbol.address() + fn.record(r).instructionOffset();
                        if (!registry.lookup(pc, frame)) {
                            throw new IllegalStateException(symbol.name() + ": its safepoint at 0x" + Long.toHexString(pc)
                                    + " is not registered");
                        }
                        long p = frame.unwindPlan();
                        for (int c = 0; c < UnwindPlan.SLOTS; c++) {
                            int k = UnwindPlan.saved(p, c);
                            if (k == 0 || k == UnwindPlan.UNDEFINED || (plan != UnwindPlan.NONE && k != UnwindPlan.saved(plan, c))) {
                                throw new IllegalStateException(symbol.name() + " at 0x" + Long.toHexString(pc) + ": its unwind plan "
                                        + UnwindPlan.describe(p) + " does not save every callee-saved register as "
                                        + (plan == UnwindPlan.NONE ? "the poll protocol needs" : UnwindPlan.describe(plan) + " does"));
                            }
                        }
                        plan = p;
                        seen.add(symbol.name());
                    }
                }
            }
        }
        if (!seen.equals(POLL_FUNCTIONS)) {
            throw new IllegalStateException("runtime.o: no statepoint found in " + POLL_FUNCTIONS.stream()
                    .filter(n -> !seen.contains(n)).sorted().toList());
        }
        return plan;
    }

    private MethodHandle bound(String name, Class<?> returns, Class<?>... parameters) {
        try {
            return MethodHandles.lookup().bind(this, name, MethodType.methodType(returns, parameters));
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    /** A file bundled with the demo: the objects regen-fixtures.sh builds and their IR sources. */
    public static byte[] bundled(String name) {
        try (InputStream in = DemoRuntime.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalArgumentException("no bundled file " + name);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public JitObject load(String name, byte[] elf) throws JitLoadException {
        return host.load(name, MemorySegment.ofArray(elf));
    }

    /** Unloads an object no thread is running: it leaves the registry first. */
    public void unload(JitObject object) throws JitLoadException {
        host.unload(object, false);
    }

    /** The host the demo's code is loaded into, for a compile pipeline to load into. */
    public JitHost host() {
        return host;
    }

    public MethodHandle downcall(String name, FunctionDescriptor descriptor) throws JitLoadException {
        return host.downcall(name, descriptor);
    }

    public SemispaceHeap heap() {
        return heap;
    }

    public SafepointRegistry registry() {
        return registry;
    }

    public SafepointCoordinator coordinator() {
        return coordinator;
    }

    /** Attaches the calling thread: its context block is what the JIT code gets as {@code ctx}. */
    public Mutator attach() {
        Mutator m = coordinator.attach();
        heap.addMutator(m);
        byContext.put(m.context().address(), m);
        return m;
    }

    public void detach(Mutator m) {
        byContext.remove(m.context().address());
        heap.removeMutator(m);
        m.close();
    }

    /** GC stress: every poll collects. */
    public void collectAtEveryPoll(boolean on) {
        coordinator.collectAtEveryPoll(on ? heap : null);
    }

    /** Collects now, from a thread outside JIT code. */
    public void collect() throws StackWalkException {
        coordinator.stopTheWorld(null, 0, heap);
    }

    /** Bad objects the JIT code ran into (a stale root reading poison), as messages. */
    public List<String> failures() {
        synchronized (failures) {
            return List.copyOf(failures);
        }
    }

    private Mutator mutator(MemorySegment ctx) {
        Mutator m = byContext.get(ctx.address());
        if (m == null) {
            throw new IllegalStateException("no mutator with context block 0x" + Long.toHexString(ctx.address()));
        }
        return m;
    }

    private long allocUpcall(MemorySegment ctx, MemorySegment slot, long size, long header) {
        try {
            Mutator m = mutator(ctx);
            long object = heap.allocate(m.context(), size, header);
            if (object != 0) {
                return object;
            }
            // Collect, and allocate while the world is still stopped: once the others resume they
            // could fill the space again before this thread's next try.
            long[] allocated = {0};
            coordinator.stopTheWorld(m, slot.address(), world -> {
                heap.run(world);
                allocated[0] = heap.allocate(m.context(), size, header);
            });
            if (allocated[0] != 0) {
                return allocated[0];
            }
            fatal("out of memory: " + size + " bytes wanted, " + heap.used() + " bytes in use after collecting", null);
        } catch (Throwable t) {
            fatal("allocation failed", t);
        }
        return 0;
    }

    private void collectUpcall(MemorySegment ctx, MemorySegment slot) {
        try {
            coordinator.stopTheWorld(mutator(ctx), slot.address(), heap);
        } catch (Throwable t) {
            fatal("a requested collection failed", t);
        }
    }

    /**
     * Where {@code rt_nested_trees} (runtime.ll) goes: Java enters JIT code again through
     * {@code trees}, from inside the exit.
     */
    public void nestInto(MethodHandle trees) {
        nestedEntry = trees;
    }

    /** spk_nested: in Java, inside an exit from JIT code; builds and checks one tree in a nested run. */
    private long nestedUpcall(MemorySegment ctx, int depth) {
        try {
            Mutator m = mutator(ctx);
            MethodHandle entry = nestedEntry;
            if (entry == null) {
                throw new IllegalStateException("nested code ran before nestInto");
            }
            long check;
            try (var scope = m.enter()) {
                check = (long) entry.invokeExact(m.context(), depth, 1L);
            }
            long expected = BinaryTrees.nodes(depth);
            if (check != expected) {
                failures.add("a nested run's tree of depth " + depth + " checked " + check + ", expected " + expected);
            }
            return check;
        } catch (Throwable t) {
            fatal("a nested run failed", t);
            return 0;
        }
    }

    private void badObjectUpcall(MemorySegment ctx, long address, long header) {
        failures.add("JIT code read object 0x" + Long.toHexString(address) + " with header 0x" + Long.toHexString(header)
                + (header == SemispaceHeap.POISON ? " (poison: a stale root)" : ""));
    }

    /** A collector failure: the heap cannot be trusted and JIT code must not continue. */
    private static void fatal(String what, Throwable cause) {
        System.err.println("safepointkit demo: " + what + (cause == null ? "" : ": " + cause));
        if (cause != null) {
            cause.printStackTrace();
        }
        System.err.flush();
        Runtime.getRuntime().halt(3);
    }

    @Override
    public void close() {
        host.close();
        upcalls.close();
        heap.close();
    }
}
