package dev.safepointkit.roots;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * One thread that runs JIT code under a {@link SafepointCoordinator}, and its context block: off-heap
 * memory the JIT code is handed (as a {@code ptr} argument) and reads and writes directly.
 *
 * <p>Layout of the context block (all fields 8 bytes, little endian):
 * <pre>
 *   0  poll word      nonzero: a stop is requested; the JIT code must call its poll (see below)
 *   8  entry slot     address of the JIT entry function's return-address slot; the entry function
 *                     stores {@code llvm.addressofreturnaddress()} here before anything else
 *  16  mutator index  written once by the coordinator
 *  24  reserved
 *  32  client area    {@link SafepointCoordinator}'s clientBytes, free for the runtime
 *                     (a thread-local allocation buffer, for example)
 * </pre>
 *
 * <p>The poll protocol. JIT code loads the poll word (an atomic monotonic load is enough) at each
 * poll site: function entries and loop back edges, and before any long-running work. When it is
 * nonzero it calls a poll function through a statepoint. That function is not GC-managed, keeps a
 * frame pointer ({@code "frame-pointer"="all"}), and passes {@code llvm.addressofreturnaddress()}
 * (the slot of the return address into the polling JIT frame) to {@link SafepointCoordinator#poll},
 * bound as an FFM upcall. Runtime slow paths that may collect (allocation) do the same and call
 * {@link SafepointCoordinator#stopTheWorld(Mutator, long, WorldAction)}.
 *
 * <p>Only one run of JIT frames per thread: JIT code may call into Java (polls, slow paths), but Java
 * may not call back into JIT code from there; {@link #enter} refuses it, since the walk would stop
 * at the Java frames and miss the outer JIT frames' roots.
 */
public final class Mutator implements AutoCloseable {
    public static final long POLL_WORD = 0;
    public static final long ENTRY_SLOT = 8;
    public static final long INDEX = 16;
    public static final long CLIENT_AREA = 32;

    private static final VarHandle WORD = ValueLayout.JAVA_LONG.varHandle();

    enum State { OUTSIDE, IN_JIT, PARKED }

    final SafepointCoordinator coordinator;
    final int index;
    final Thread thread;
    private final Arena arena;
    final MemorySegment context;
    State state = State.OUTSIDE;  // guarded by the coordinator's lock
    long parkedSlot;              // guarded by the coordinator's lock
    long polls;                   // guarded by the coordinator's lock

    Mutator(SafepointCoordinator coordinator, int index, long clientBytes) {
        this.coordinator = coordinator;
        this.index = index;
        this.thread = Thread.currentThread();
        this.arena = Arena.ofShared();
        this.context = arena.allocate(CLIENT_AREA + clientBytes, 64);
        context.set(ValueLayout.JAVA_LONG, INDEX, index);
    }

    /** The context block to pass to JIT code. */
    public MemorySegment context() {
        return context;
    }

    /** The thread this mutator belongs to. */
    public Thread thread() {
        return thread;
    }

    public int index() {
        return index;
    }

    /**
     * Marks the thread as running JIT code until {@link JitScope#close}: a stop now waits for it
     * to reach a poll. Blocks while the world is stopped.
     */
    public JitScope enter() {
        checkThread();
        coordinator.enter(this);
        return scope;
    }

    private final JitScope scope = new JitScope();

    /** The span of one call into JIT code; close it when the call returns. */
    public final class JitScope implements AutoCloseable {
        private JitScope() {}

        @Override
        public void close() {
            coordinator.leave(Mutator.this);
        }
    }

    void requestPoll(boolean stop) {
        WORD.setRelease(context, POLL_WORD, stop ? 1L : 0L);
    }

    long entrySlot() {
        return (long) WORD.getAcquire(context, ENTRY_SLOT);
    }

    void checkThread() {
        if (Thread.currentThread() != thread) {
            throw new IllegalStateException("mutator " + index + " belongs to " + thread + ", not " + Thread.currentThread());
        }
    }

    /** Detaches the thread from its coordinator and frees the context block. */
    @Override
    public void close() {
        coordinator.detach(this);
        arena.close();
    }
}
