package dev.safepointkit.roots;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;

/**
 * One thread that runs JIT code under a {@link SafepointCoordinator}, and its context block: off-heap
 * memory the JIT code is handed (as a {@code ptr} argument) and reads and writes directly.
 *
 * <p>Layout of the context block (all fields 8 bytes, little endian):
 * <pre>
 *   0  poll word      nonzero: a stop is requested; the JIT code must call its poll (see below)
 *   8  entry slot     address of the return-address slot of the JIT entry function of the current
 *                     run: the entry function stores {@code llvm.addressofreturnaddress()} here
 *                     before anything else (or passes it to the native entry, below)
 *  16  mutator index  written once by the coordinator
 *  24  reserved
 *  32  client area    {@link SafepointCoordinator}'s clientBytes, free for the runtime
 *                     (a thread-local allocation buffer, for example)
 * </pre>
 *
 * <p>The poll protocol. JIT code loads the poll word (an atomic monotonic load is enough) at each
 * poll site: function entries and loop back edges, and before any long-running work. When it is
 * nonzero it calls a poll function through a statepoint. That function holds no GC pointer, keeps a
 * frame pointer ({@code "frame-pointer"="all"}), and passes {@code llvm.addressofreturnaddress()}
 * (the slot of the return address into the polling JIT frame) to {@link SafepointCoordinator#poll},
 * bound as an FFM upcall. When JIT code keeps GC pointers in callee-saved registers, it also saves
 * all of them, and the coordinator is told where ({@link SafepointCoordinator#pollSaves}). Runtime slow paths that may collect (allocation) do the same and call
 * {@link SafepointCoordinator#stopTheWorld(Mutator, long, WorldAction)}.
 *
 * <p>Runs, exits and entries. A run is a stretch of JIT frames entered from foreign code (Java or
 * C). It begins at its entry slot and a walk of it must end exactly there. JIT code leaves a run
 * for foreign code that may block or call back into JIT code only through an exit function: like
 * the poll function, holding no GC pointer, with a frame pointer, called through a statepoint; it passes
 * {@code llvm.addressofreturnaddress()} to {@link SafepointCoordinator#exitUpcall}'s upcall, makes
 * the foreign call, then calls {@link SafepointCoordinator#returnUpcall}'s. Between the two the
 * thread is in native code: a stop does not wait for it, its JIT frames are walked from the exit
 * slot, and the return blocks while a stop is in progress. From there foreign code may enter JIT
 * code again: Java through {@link #enter}, C through a JIT function that first calls
 * {@link SafepointCoordinator#nativeEntryUpcall}'s upcall with its own return-address slot and
 * last {@link SafepointCoordinator#nativeLeaveUpcall}'s. A stopped thread's walk visits every run,
 * innermost first, and skips foreign frames only between an exit and the next entry. Nesting is
 * bounded only by the stack. Foreign code between an exit and the next entry holds no GC pointer:
 * nothing relocates what it keeps, so GC pointers cross an exit only as roots the collector knows
 * (the JIT frames' own, or handles).
 *
 * <p>Threads: a mutator belongs to the thread that attached it; every method but {@link #context},
 * {@link #thread} and {@link #index} must be called on that thread, and the coordinator refuses
 * calls from others with {@link IllegalStateException}.
 */
public final class Mutator implements AutoCloseable {
    /** Byte offset of the poll word in the context block: nonzero while a stop is requested. */
    public static final long POLL_WORD = 0;
    /** Byte offset of the entry slot: the address of the current run's entry return-address slot. */
    public static final long ENTRY_SLOT = 8;
    /** Byte offset of the mutator's index, written once by the coordinator. */
    public static final long INDEX = 16;
    /** Byte offset of the runtime's client area, {@code clientBytes} long. */
    public static final long CLIENT_AREA = 32;

    private static final VarHandle WORD = ValueLayout.JAVA_LONG.varHandle();

    /** Where the thread is; changed only under the coordinator's lock. */
    enum State {
        /** Outside any run, or in foreign code with no JIT frames below. */
        OUTSIDE,
        /** Running JIT code: a stop waits for it to poll. */
        IN_JIT,
        /** Stopped at a poll or a slow path, its stack captured. */
        PARKED,
        /** In foreign code through an exit: its JIT frames are walkable, it may not return while stopped. */
        IN_NATIVE
    }

    /** A run left through an exit: the slot of the exit function's return address, and the run's entry slot. */
    record Exit(long exitSlot, long entrySlot) {}

    /** An entry into JIT code still open: how it was made and the state to return to when it ends. */
    record Entry(boolean fromJava, State before, JitScope scope) {}

    final SafepointCoordinator coordinator;
    final int index;
    final Thread thread;
    private final Arena arena;
    final MemorySegment context;
    State state = State.OUTSIDE;                       // guarded by the coordinator's lock
    long parkedSlot;                                   // guarded by the coordinator's lock
    long polls;                                        // guarded by the coordinator's lock
    /**
     * The number of the last stop that released this mutator from a park ({@code stops} after it
     * ended). Written with a volatile store by the releasing thread, under the lock, before it
     * unparks this thread; read (volatile) by this thread in its park loop, without the lock.
     */
    volatile long releasedBy;
    final ArrayList<Exit> exits = new ArrayList<>();    // guarded by the coordinator's lock; innermost last
    final ArrayList<Entry> entries = new ArrayList<>(); // guarded by the coordinator's lock; innermost last

    Mutator(SafepointCoordinator coordinator, int index, long clientBytes) {
        this.coordinator = coordinator;
        this.index = index;
        this.thread = Thread.currentThread();
        this.arena = Arena.ofShared();
        this.context = arena.allocate(CLIENT_AREA + clientBytes, 64);
        context.set(ValueLayout.JAVA_LONG, INDEX, index);
    }

    /**
     * The context block to pass to JIT code. Any thread.
     *
     * @return the block, {@link #CLIENT_AREA} plus {@code clientBytes} long, 64-byte aligned; freed
     *     by {@link #close}
     */
    public MemorySegment context() {
        return context;
    }

    /**
     * The thread this mutator belongs to. Any thread.
     *
     * @return the thread that attached it
     */
    public Thread thread() {
        return thread;
    }

    /**
     * The mutator's index, also stored at {@link #INDEX} in its context block. Any thread.
     *
     * @return the index, at least 0, unique among the coordinator's attached mutators (the index of
     *     a detached one may be given again)
     */
    public int index() {
        return index;
    }

    /**
     * Marks the thread as running JIT code until the returned scope is closed: a stop now waits
     * for it to reach a poll. Blocks while the world is stopped. Allowed outside JIT code, and in
     * foreign code reached through an exit (a Java upcall from JIT code): a nested run.
     *
     * @return the scope, to be closed on this thread when the call into JIT code returns
     * @throws IllegalStateException on another thread, or when the thread is running JIT code now
     *     (it must leave through an exit first)
     */
    public JitScope enter() {
        JitScope scope = new JitScope();
        coordinator.enter(this, scope);
        return scope;
    }

    /** The span of one call into JIT code from Java; close it, on the same thread, when the call returns. */
    public final class JitScope implements AutoCloseable {
        boolean closed;  // guarded by the coordinator's lock

        private JitScope() {}

        /**
         * Ends the entry.
         *
         * @throws IllegalStateException on another thread, when closed already, or when it is not
         *     the innermost open entry (an inner run was not left)
         */
        @Override
        public void close() {
            coordinator.leave(Mutator.this, this);
        }
    }

    void requestPoll(boolean stop) {
        WORD.setRelease(context, POLL_WORD, stop ? 1L : 0L);
    }

    long entrySlot() {
        return (long) WORD.getAcquire(context, ENTRY_SLOT);
    }

    void setEntrySlot(long slot) {
        WORD.setRelease(context, ENTRY_SLOT, slot);
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
