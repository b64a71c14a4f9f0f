package dev.safepointkit.roots;

import dev.safepointkit.registry.UnwindPlan;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Stops every mutator thread at a safepoint so a collector can scan and fix their stacks.
 *
 * <p>Each thread that runs JIT code attaches once ({@link #attach}) and brackets every call into
 * JIT code from Java with {@link Mutator#enter}. A stop sets every mutator's poll word; a thread in
 * JIT code reaches its next poll, which calls {@link #poll} and parks there with its stack
 * captured; a thread outside JIT code, or in native code through an exit (see {@link Mutator}), is
 * stopped already and may not enter or return into JIT code until the stop ends. When no mutator
 * is left running JIT code the {@link WorldAction} runs with every stopped stack, then the poll
 * words are cleared and the mutators resume.
 *
 * <p>The collector is either a thread that is not running JIT code or a mutator in a slow path (an
 * allocation that found no memory): that mutator passes its own slot and counts as parked. Two
 * stops never overlap: a mutator asking for a stop while another runs parks first and is scanned
 * by the other.
 *
 * <p>Fail closed. A call that does not fit the thread's state is refused with an
 * {@link IllegalStateException} instead of leaving the thread in a state a stop would wait on
 * forever: a poll, exit or return from a thread not in the matching state, a scope closed twice or
 * from another thread, a stop requested from inside a {@link WorldAction} or by a thread that is
 * running JIT code without passing its slot. From JIT code (the upcalls) the refusal goes to the
 * failure handler given with the upcall. A stop that waits longer than its timeout
 * ({@link #stopTimeout}) fails with a {@link StopTimeoutException} naming every mutator still
 * running, and releases the others.
 *
 * <p>With {@link #collectAtEveryPoll} the poll words stay set and every poll stops the world and
 * runs the action: a stress mode that makes a stale root show up at once.
 *
 * <p>Thread safe. Stops are rare and short next to JIT code, so state changes use one lock (the
 * only lock of this package; a {@link WorldAction} runs while it is held); the fast path in JIT
 * code is only the load of the poll word, whose stores are release stores that the JIT code may
 * read with any ordering: a poll word seen late only delays the stop.
 *
 * <p>Parking does not queue on the lock. A polling mutator takes the lock once (it finds its
 * {@link Mutator} through a copy-on-write array, without the lock), marks itself parked, wakes
 * the stopping thread only if it was the last one running JIT code, and waits outside the lock
 * on its own word ({@link Mutator#releasedBy}, {@link LockSupport#park}). The stop ends by
 * storing each parked mutator's word (volatile) and unparking its thread; a released thread takes
 * the lock once to mark itself running, and stays parked if another stop has begun by then (it
 * has not run since, so that stop need not wait for the scheduler to run it).
 *
 * <p>The stopping thread does not sleep where its wake-up would cost more than the wait. While
 * there are fewer mutators than cores it first spins outside the lock, for up to
 * {@link #SPIN_NANOS}, on a volatile count that every signal of a park or leave raises
 * ({@link #changes}); only then does it wait on the lock's condition. The spin adapts
 * ({@link SpinBudget}): on a busy machine the stopper often runs on the core it took from the
 * very mutator it waits for, where a spin only delays that mutator; such a spin runs out, and
 * the stopper then blocks at once but for an occasional probe. (Parked mutators do not spin for
 * their release: one that did would hold the core that the stopper, woken by its park, is
 * queued on.) A thread that
 * takes the lock right after another let go tries it a while before it queues. The threads a
 * stop released are unparked after its unlock, so none of them wakes to find the lock held by a
 * stopper it has just taken the core from. Each spin is an earlier look at what the lock
 * guards; states change only under the lock, and every spin ends in the blocking wait, so none
 * of this makes a thread count as stopped sooner than its park under the lock.
 *
 * <p>Lock order: the {@link WorldAction} runs under the coordinator's lock, so a lock the action
 * takes comes after it. Such a lock must never be held by a thread while it calls into the
 * coordinator ({@link #attach}, {@link #mutatorCount}, {@link #stops}, {@link Mutator#enter}, a
 * poll, an exit or return, an entry from native code, {@link #stopTheWorld}): that thread would
 * wait for the coordinator's lock while the action waits for its lock, and neither stop nor
 * mutator would go on. (A stop's timeout does not help: it bounds only the wait for the mutators
 * to park, not the action.)
 */
public final class SafepointCoordinator {
    /** How long a stop waits for the mutators running JIT code unless {@link #stopTimeout} says otherwise. */
    public static final Duration DEFAULT_STOP_TIMEOUT = Duration.ofSeconds(30);
    /** The upcall shape of {@link #pollUpcall}, {@link #exitUpcall} and {@link #nativeEntryUpcall}: (context, slot). */
    public static final FunctionDescriptor SLOT_UPCALL = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS);
    /** The upcall shape of {@link #returnUpcall} and {@link #nativeLeaveUpcall}: (context). */
    public static final FunctionDescriptor CONTEXT_UPCALL = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS);

    private final long clientBytes;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();   // a mutator parked or left JIT code
    /**
     * Raised (under the lock) whenever {@link #changed} is signalled, so a stopping thread that
     * spins outside the lock instead of waiting on the condition sees a park or a leave as soon as
     * it happens; read (volatile) without the lock by that thread only, which then takes the lock
     * to check the states themselves: the count is a hint to look, never a state.
     */
    private volatile long changes;
    private final Condition resumed = lock.newCondition();   // a stop ended
    /** The attached mutators, in attach order; guarded by the lock. */
    private final List<Mutator> mutators = new ArrayList<>();
    /** {@link #mutators} as an array for {@link #mutatorOf} without the lock: replaced (volatile) under the lock. */
    private volatile Mutator[] attached = new Mutator[0];
    /** A stop is in progress, from its start to the release of its mutators; guarded by the lock. */
    private boolean stopping;
    /** How long a stop spins for the parks before it blocks ({@link #SPIN_NANOS} at most); guarded by the lock. */
    private final SpinBudget stopSpin = new SpinBudget(SPIN_NANOS, MIN_SPIN_NANOS, PROBE_EVERY);
    /**
     * The thread running the current stop's action while {@link #stopping}; it must not wait for
     * its own stop. Guarded by the lock.
     */
    private Thread collector;
    /** Stops ended so far ({@link #stops()}); a parked mutator waits for it to pass the value it parked with. Guarded by the lock. */
    private long stops;
    private volatile WorldAction everyPoll;
    /** Where the runtime's poll, slow-path and exit functions save the JIT frame's callee-saved registers, or NONE. */
    private volatile long pollPlan = UnwindPlan.NONE;
    private volatile long stopTimeoutNanos = DEFAULT_STOP_TIMEOUT.toNanos();
    /**
     * How long a stop spins for the mutators to park before it blocks, when they leave a core
     * free ({@link #CORES}): many times what a mutator on a core takes to see its poll word, make
     * the upcall and park (a microsecond or two). A stop that takes longer waits on the lock's
     * condition, so a mutator that does not poll for a long time costs at most this much CPU.
     */
    static final long SPIN_NANOS = 20_000;
    /** The shortest spin worth making, a few times what a mutator on a core takes to park. */
    static final long MIN_SPIN_NANOS = 5_000;
    /** Once spinning no longer pays, one wait in this many spins {@link #MIN_SPIN_NANOS} to see whether it pays again. */
    static final int PROBE_EVERY = 8;
    /** How often {@link #lockSpinning} tries the lock before it queues on it. */
    private static final int LOCK_SPINS = 100;
    /**
     * The cores this JVM may run on. With fewer mutators than that, a stopper that spins takes no
     * core from a mutator; with as many or more, it would keep a descheduled mutator from the
     * core it needs to reach its poll, so it blocks at once.
     */
    private static final int CORES = Runtime.getRuntime().availableProcessors();

    /**
     * A coordinator with no mutators yet, a stop timeout of {@link #DEFAULT_STOP_TIMEOUT} and
     * stress mode off.
     *
     * @param clientBytes size in bytes of the runtime's own area in every mutator's context block,
     *     at {@link Mutator#CLIENT_AREA}; may be 0
     * @throws IllegalArgumentException if {@code clientBytes} is negative
     */
    public SafepointCoordinator(long clientBytes) {
        if (clientBytes < 0) {
            throw new IllegalArgumentException("clientBytes " + clientBytes);
        }
        this.clientBytes = clientBytes;
    }

    /**
     * How long a stop may wait for the mutators running JIT code to park; from any thread. A stop
     * already waiting keeps the timeout it started with.
     *
     * @param timeout a positive duration, kept to the nanosecond
     * @throws IllegalArgumentException if {@code timeout} is zero or negative
     */
    public void stopTimeout(Duration timeout) {
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("stop timeout " + timeout);
        }
        stopTimeoutNanos = timeout.toNanos();
    }

    /**
     * Attaches the calling thread as a mutator, outside JIT code; allocates its context block.
     * If stress mode is on, its poll word is set from the start.
     *
     * @return the new mutator, to be used on this thread only and closed when the thread is done
     * @throws IllegalStateException if this thread is attached already
     */
    public Mutator attach() {
        lock.lock();
        try {
            Mutator existing = mutatorOfThread();
            if (existing != null) {
                throw new IllegalStateException(Thread.currentThread() + " is already attached as mutator " + existing.index);
            }
            Mutator m = new Mutator(this, nextIndex(), clientBytes);
            m.requestPoll(everyPoll != null);
            mutators.add(m);
            attached = mutators.toArray(Mutator[]::new);
            return m;
        } finally {
            lock.unlock();
        }
    }

    private int nextIndex() {
        int index = 0;
        for (Mutator m : mutators) {
            index = Math.max(index, m.index + 1);
        }
        return index;
    }

    /** The calling thread's mutator, or null. Under the lock. */
    private Mutator mutatorOfThread() {
        for (Mutator m : mutators) {
            if (m.thread == Thread.currentThread()) {
                return m;
            }
        }
        return null;
    }

    /**
     * Mutators attached now. Any thread; takes the coordinator's lock, so it waits while a stop's
     * action runs.
     *
     * @return the number of attached, not yet closed mutators
     */
    public int mutatorCount() {
        lock.lock();
        try {
            return mutators.size();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Stops that ended so far: those whose action ran, failed, or never ran because the stop timed out.
     * Any thread; takes the coordinator's lock.
     *
     * @return the count since this coordinator was made
     */
    public long stops() {
        lock.lock();
        try {
            return stops;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Stress mode: while {@code action} is set, every poll of every mutator stops the world and runs
     * it, the polling thread acting as the collector. {@code null} ends it. Any thread.
     *
     * @param action what each of those stops runs, or null to end stress mode
     */
    public void collectAtEveryPoll(WorldAction action) {
        lock.lock();
        try {
            everyPoll = action;
            if (!stopping) {
                for (Mutator m : mutators) {
                    m.requestPoll(action != null);
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Says where the runtime's poll, slow-path and exit functions (those that hand this coordinator
     * a return-address slot: {@link #poll}, {@link #exit}, {@link #stopTheWorld} from a slow path)
     * keep the JIT frame's callee-saved registers while Java runs: their unwind plan at the call
     * out, as the registry has it from their CFI ({@link dev.safepointkit.registry.Frame#unwindPlan}).
     * They must all save alike. Every stopped run's innermost frame then has RBX, RBP, R12-R15
     * where the plan says ({@link SavedRegisters#savedByPoll}): Register roots of the polling frame
     * resolve there, and a collector's writes there are what the function's epilogue restores.
     * Without it (the default) only RBP is known, just below the slot (a poll function with a frame
     * pointer), and a register root in the polling frame fails the walk. Any thread; set it
     * before JIT code polls.
     *
     * @param plan the functions' unwind plan at their calls out
     * @throws IllegalArgumentException if {@code plan} is not a plan, or does not save RBP at the
     *     slot - 8 (CFA - 16), where a frame-pointer poll keeps it
     */
    public void pollSaves(long plan) {
        if (!UnwindPlan.present(plan)) {
            throw new IllegalArgumentException("no unwind plan: the runtime's object was registered without .eh_frame");
        }
        if (UnwindPlan.saved(plan, UnwindPlan.slotOf(JitStackWalker.RBP)) != 2) {
            throw new IllegalArgumentException("the poll's plan " + UnwindPlan.describe(plan)
                    + " does not save RBP at CFA-16, just below the slot: is it a frame-pointer function's?");
        }
        pollPlan = plan;
    }

    /** What the poll, slow path or exit that left {@code slot} saved of the JIT frame's registers. */
    private SavedRegisters savedAt(long slot) {
        long plan = pollPlan;
        return UnwindPlan.present(plan) ? SavedRegisters.savedByPoll(plan, slot) : SavedRegisters.framePointerBelow(slot);
    }

    void enter(Mutator m, Mutator.JitScope scope) {
        m.checkThread();
        lock.lock();
        try {
            if (m.state != Mutator.State.OUTSIDE && m.state != Mutator.State.IN_NATIVE) {
                throw new IllegalStateException("mutator " + m.index + " is " + m.state + ": Java may enter JIT code again"
                        + " only from foreign code that JIT code reached through an exit (see Mutator)");
            }
            awaitNoStop();
            m.entries.add(new Mutator.Entry(true, m.state, scope));
            // The entry function stores its slot; one that does not leaves 0, which a stop refuses.
            m.setEntrySlot(0);
            m.state = Mutator.State.IN_JIT;
        } finally {
            lock.unlock();
        }
    }

    void leave(Mutator m, Mutator.JitScope scope) {
        m.checkThread();
        lock.lock();
        try {
            if (scope.closed) {
                throw new IllegalStateException("mutator " + m.index + ": this JIT scope is closed already");
            }
            Mutator.Entry top = m.entries.isEmpty() ? null : m.entries.getLast();
            if (top == null || top.scope() != scope) {
                throw new IllegalStateException("mutator " + m.index + ": this scope is not the innermost entry into JIT code;"
                        + " an inner entry is still open");
            }
            if (m.state != Mutator.State.IN_JIT) {
                throw new IllegalStateException("mutator " + m.index + " closes its scope while " + m.state
                        + ": an exit out of this run has not returned");
            }
            leaveEntry(m);
            scope.closed = true;
        } finally {
            lock.unlock();
        }
    }

    private void leaveEntry(Mutator m) {
        m.state = m.entries.removeLast().before();
        signalChanged();
    }

    void detach(Mutator m) {
        lock.lock();
        try {
            m.checkThread();
            if (m.state != Mutator.State.OUTSIDE || !m.entries.isEmpty()) {
                throw new IllegalStateException("mutator " + m.index + " is still in JIT code (" + m.state + ")");
            }
            awaitNoStop();
            mutators.remove(m);
            attached = mutators.toArray(Mutator[]::new);
            signalChanged();
        } finally {
            lock.unlock();
        }
    }

    /** Waits, under the lock, until no stop is in progress; refused on the thread that runs the stop's action. */
    private void awaitNoStop() {
        refuseInsideAction();
        while (stopping) {
            resumed.awaitUninterruptibly();
        }
    }

    /** The action of a stop runs with the lock held; a wait for the stop to end would be a wait for itself. */
    private void refuseInsideAction() {
        if (stopping && collector == Thread.currentThread()) {
            throw new IllegalStateException("called from inside a WorldAction: it would wait for its own stop to end");
        }
    }

    /**
     * The poll: called on a mutator thread by the JIT code's poll function, with the address of
     * the return-address slot into the polling JIT frame. Parks while a stop is in progress;
     * returns at once if none is (the poll word may be seen late).
     *
     * @param context the polling mutator's context block, as JIT code was given it
     * @param returnAddressSlot the absolute address of the slot holding the return address into
     *     the polling JIT frame ({@code llvm.addressofreturnaddress()} in the poll function)
     * @throws StackWalkException only in stress mode, when the stop this poll runs fails
     * @throws IllegalStateException when the thread is not running JIT code, is not the context's
     *     mutator's thread, or the context block is unknown
     */
    public void poll(MemorySegment context, long returnAddressSlot) throws StackWalkException {
        Mutator self = mutatorOf(context);
        WorldAction action = everyPoll;
        if (action != null) {
            stopTheWorld(self, returnAddressSlot, action);
            return;
        }
        long stop;
        lock.lock();
        try {
            requireInJit(self, "polls");
            self.polls++;
            if (!stopping) {
                return;
            }
            stop = parkLocked(self, returnAddressSlot);
        } finally {
            lock.unlock();
        }
        while (true) {
            awaitRelease(self, stop);
            lockSpinning();
            try {
                if (!stopping) {
                    self.state = Mutator.State.IN_JIT;
                    return;
                }
                // A stop began before this thread ran again: it has stayed parked at the same poll
                // all along, and the new stop counts it as parked (it never ran JIT code between).
                stop = stops;
            } finally {
                lock.unlock();
            }
        }
    }

    private static void requireInJit(Mutator m, String what) {
        if (m.state != Mutator.State.IN_JIT) {
            throw new IllegalStateException("mutator " + m.index + " " + what + " while " + m.state
                    + ": only a thread running JIT code may");
        }
    }

    /**
     * The exit: JIT code's exit function leaves the current run for foreign code. {@code exitSlot}
     * is the exit function's return-address slot (into the JIT frame that called it). Until
     * {@link #returnFromExit} the thread is in native code: stops do not wait for it and walk its
     * runs from there.
     *
     * @param context the exiting mutator's context block
     * @param exitSlot the absolute address of the exit function's return-address slot
     * @throws IllegalStateException when the thread is not running JIT code, is not the context's
     *     mutator's thread, or the context block is unknown
     */
    public void exit(MemorySegment context, long exitSlot) {
        Mutator m = mutatorOf(context);
        lock.lock();
        try {
            requireInJit(m, "exits JIT code");
            m.exits.add(new Mutator.Exit(exitSlot, m.entrySlot()));
            m.state = Mutator.State.IN_NATIVE;
            signalChanged();
        } finally {
            lock.unlock();
        }
    }

    /**
     * The return from an exit: blocks while a stop is in progress, then the run continues.
     *
     * @param context the returning mutator's context block
     * @throws IllegalStateException when the thread is not in native code through an exit, is
     *     not the context's mutator's thread, the context block is unknown, or it is called from
     *     inside a {@link WorldAction}
     */
    public void returnFromExit(MemorySegment context) {
        Mutator m = mutatorOf(context);
        lock.lock();
        try {
            if (m.state != Mutator.State.IN_NATIVE || m.exits.isEmpty()) {
                throw new IllegalStateException("mutator " + m.index + " returns from an exit while " + m.state
                        + (m.exits.isEmpty() ? " and it made none" : ""));
            }
            awaitNoStop();
            m.setEntrySlot(m.exits.removeLast().entrySlot());
            m.state = Mutator.State.IN_JIT;
        } finally {
            lock.unlock();
        }
    }

    /**
     * An entry into JIT code from C: the JIT function foreign code called passes its own
     * return-address slot first, before it touches a GC pointer. Blocks while a stop is in progress.
     *
     * @param context the entering mutator's context block
     * @param entrySlot the absolute address of the JIT function's own return-address slot, below
     *     the innermost exit slot if the thread made an exit
     * @throws IllegalStateException when the thread is running JIT code or parked, the slot is 0 or
     *     not below the innermost exit slot, the thread is not the context's mutator's, the context
     *     block is unknown, or it is called from inside a {@link WorldAction}
     */
    public void enterFromNative(MemorySegment context, long entrySlot) {
        Mutator m = mutatorOf(context);
        lock.lock();
        try {
            if (m.state != Mutator.State.OUTSIDE && m.state != Mutator.State.IN_NATIVE) {
                throw new IllegalStateException("mutator " + m.index + " enters JIT code from native code while " + m.state);
            }
            long innermostExit = m.exits.isEmpty() ? Long.MAX_VALUE : m.exits.getLast().exitSlot();
            if (entrySlot == 0 || Long.compareUnsigned(entrySlot, innermostExit) >= 0) {
                throw new IllegalStateException("mutator " + m.index + " enters JIT code from native code at slot 0x"
                        + Long.toHexString(entrySlot) + ", which is not below its innermost exit slot 0x"
                        + Long.toHexString(innermostExit));
            }
            awaitNoStop();
            m.entries.add(new Mutator.Entry(false, m.state, null));
            m.setEntrySlot(entrySlot);
            m.state = Mutator.State.IN_JIT;
        } finally {
            lock.unlock();
        }
    }

    /**
     * The end of an entry made with {@link #enterFromNative}: the JIT function returns to C.
     *
     * @param context the leaving mutator's context block
     * @throws IllegalStateException when the thread is not running JIT code, its innermost entry
     *     was not made from C, the thread is not the context's mutator's, or the context block is
     *     unknown
     */
    public void leaveToNative(MemorySegment context) {
        Mutator m = mutatorOf(context);
        lock.lock();
        try {
            Mutator.Entry top = m.entries.isEmpty() ? null : m.entries.getLast();
            if (top == null || top.fromJava() || m.state != Mutator.State.IN_JIT) {
                throw new IllegalStateException("mutator " + m.index + " leaves to native code while " + m.state
                        + (top == null ? " with no entry open" : top.fromJava() ? ": its innermost entry came from Java" : ""));
            }
            leaveEntry(m);
        } finally {
            lock.unlock();
        }
    }

    /**
     * A method handle {@code (MemorySegment context, MemorySegment slot) void} for the poll upcall
     * ({@link #SLOT_UPCALL}): bind it with the JIT host's {@code defineUpcall}. It never throws (an
     * exception cannot cross an upcall): a refused poll or a failure of a stress-mode action is
     * handed to {@code failures}.
     *
     * <p>The same holds for every upcall of this class. A refusal means the runtime broke the
     * protocol (JIT code that polls or exits without having entered, say): when {@code failures}
     * returns, the JIT code runs on in a state no stop accounts for, so a runtime's handler should
     * end the process, as the demo's does, unless it is a test that checks what was refused.
     *
     * @param failures gets every exception the poll throws, on the polling thread
     * @return the handle, bound to this coordinator
     */
    public MethodHandle pollUpcall(Consumer<Throwable> failures) {
        return upcall("poll", true, failures);
    }

    /**
     * {@link #exit} as an upcall ({@link #SLOT_UPCALL}); a refusal goes to {@code failures}.
     *
     * @param failures gets every exception the exit throws, on the exiting thread
     * @return a handle {@code (MemorySegment context, MemorySegment slot) void}, bound to this
     *     coordinator
     */
    public MethodHandle exitUpcall(Consumer<Throwable> failures) {
        return upcall("exit", true, failures);
    }

    /**
     * {@link #returnFromExit} as an upcall ({@link #CONTEXT_UPCALL}); a refusal goes to {@code failures}.
     *
     * @param failures gets every exception the return throws, on the returning thread
     * @return a handle {@code (MemorySegment context) void}, bound to this coordinator
     */
    public MethodHandle returnUpcall(Consumer<Throwable> failures) {
        return upcall("returnFromExit", false, failures);
    }

    /**
     * {@link #enterFromNative} as an upcall ({@link #SLOT_UPCALL}); a refusal goes to {@code failures}.
     *
     * @param failures gets every exception the entry throws, on the entering thread
     * @return a handle {@code (MemorySegment context, MemorySegment slot) void}, bound to this
     *     coordinator
     */
    public MethodHandle nativeEntryUpcall(Consumer<Throwable> failures) {
        return upcall("enterFromNative", true, failures);
    }

    /**
     * {@link #leaveToNative} as an upcall ({@link #CONTEXT_UPCALL}); a refusal goes to {@code failures}.
     *
     * @param failures gets every exception the leave throws, on the leaving thread
     * @return a handle {@code (MemorySegment context) void}, bound to this coordinator
     */
    public MethodHandle nativeLeaveUpcall(Consumer<Throwable> failures) {
        return upcall("leaveToNative", false, failures);
    }

    /**
     * {@code method} of this coordinator as an upcall that never throws: a slot argument arrives
     * as a MemorySegment and is passed on as its address, and whatever the method throws goes to
     * {@code failures} instead of crossing the upcall.
     */
    private MethodHandle upcall(String method, boolean takesSlot, Consumer<Throwable> failures) {
        MethodType type = takesSlot ? MethodType.methodType(void.class, MemorySegment.class, long.class)
                : MethodType.methodType(void.class, MemorySegment.class);
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            MethodHandle target = lookup.findVirtual(SafepointCoordinator.class, method, type).bindTo(this);
            if (takesSlot) {
                target = MethodHandles.filterArguments(target, 1,
                        lookup.findVirtual(MemorySegment.class, "address", MethodType.methodType(long.class)));
            }
            MethodHandle report = lookup.findVirtual(Consumer.class, "accept", MethodType.methodType(void.class, Object.class))
                    .bindTo(failures).asType(MethodType.methodType(void.class, Throwable.class));
            return MethodHandles.catchException(target, Throwable.class,
                    MethodHandles.dropArguments(report, 1, target.type().parameterList()));
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    /**
     * Stops every mutator, runs {@code action}, and resumes them. Called from a thread that is not
     * running JIT code ({@code self} null: a collector thread, or a mutator outside JIT code or in
     * native code), or from a mutator in a runtime slow path, which passes the slot of its return
     * address into the JIT frame that called the slow path and is scanned like the others. A
     * failure of the action is rethrown after the mutators resume.
     *
     * @param self the calling mutator when it calls from a slow path in JIT code, else null
     * @param selfSlot with {@code self}, the absolute address of the slot holding the return
     *     address into the JIT frame that called the slow path; ignored when {@code self} is null
     * @param action what the collector does with every mutator stopped; runs on this thread
     * @throws StopTimeoutException when mutators running JIT code did not park within the timeout
     * @throws StackWalkException when the action fails with one, or a stopped thread's runs are not
     *     in order (an entry slot not recorded)
     * @throws IllegalStateException when called from inside a {@link WorldAction}, or by a thread
     *     running JIT code without its slot: the stop would wait for itself
     */
    public void stopTheWorld(Mutator self, long selfSlot, WorldAction action) throws StackWalkException {
        if (lock.isHeldByCurrentThread()) {
            throw new IllegalStateException("a stop was requested from inside a WorldAction or another call of this"
                    + " coordinator on the same thread: it would wait for itself");
        }
        Mutator[] released = null;   // with releasedStop: whom the stop released, to wake after the unlock
        long releasedStop = 0;
        lock.lock();
        try {
            if (self != null) {
                self.checkThread();
                if (self.coordinator != this || !mutators.contains(self)) {
                    throw new IllegalStateException("mutator " + self.index + " is not attached to this coordinator");
                }
                requireInJit(self, "asks for a stop from a slow path");
                self.polls++;
            } else {
                Mutator mine = mutatorOfThread();
                if (mine != null && mine.state == Mutator.State.IN_JIT) {
                    throw new IllegalStateException("mutator " + mine.index + " is running JIT code and asks for a stop"
                            + " without its slot: it would wait for itself; a slow path passes its mutator and slot");
                }
            }
            while (stopping) {
                if (self != null) {
                    park(self, selfSlot);  // another stop is on: be scanned by it, then start ours
                } else {
                    resumed.awaitUninterruptibly();
                }
            }
            stopping = true;
            collector = Thread.currentThread();
            long requested = System.nanoTime();
            if (self != null) {
                self.state = Mutator.State.PARKED;
                self.parkedSlot = selfSlot;
            }
            try {
                for (Mutator m : mutators) {
                    m.requestPoll(true);
                }
                awaitStopped(requested);
                // The time to safepoint ends when the last mutator is seen parked, before the
                // stacks are gathered: that is the stop's own work, as HotSpot's "cleanup" is.
                StoppedWorld world = world(requested, System.nanoTime());
                try {
                    action.run(world);
                } finally {
                    world.end();   // a world kept past its stop must not pass for a stop
                }
            } finally {
                boolean stress = everyPoll != null;
                for (Mutator m : mutators) {
                    m.requestPoll(stress);
                }
                if (self != null) {
                    self.state = Mutator.State.IN_JIT;
                }
                stopping = false;
                collector = null;
                release(self);
                released = attached;
                releasedStop = stops;
                resumed.signalAll();
            }
        } finally {
            lock.unlock();
            // After the unlock: a woken thread that takes this core or the other one must not find
            // the lock still held by this thread (descheduled, it would hold up every thread it woke).
            wake(released, releasedStop);
        }
    }

    /**
     * Under the lock: a mutator parked or left JIT code. Wakes a stopping thread that waits on
     * {@link #changed}, and raises {@link #changes} for one that spins.
     */
    private void signalChanged() {
        changes++;   // only under the lock: no lost update
        changed.signalAll();
    }

    /**
     * Waits, under the lock, until no mutator runs JIT code, or fails when the timeout passes
     * first. Spins first ({@link #spinForChange}), then waits on {@link #changed}.
     */
    private void awaitStopped(long requested) throws StopTimeoutException {
        long timeout = stopTimeoutNanos;
        long spin = attached.length < CORES && anyRunning() ? stopSpin.next() : 0;
        long spinUntil = requested + Math.min(spin, timeout);
        boolean interrupted = false;
        try {
            if (spin > 0) {
                while (anyRunning() && System.nanoTime() - spinUntil < 0) {
                    spinForChange(spinUntil);
                }
                stopSpin.spun(!anyRunning());
            }
            while (anyRunning()) {
                long left = requested + timeout - System.nanoTime();
                if (left <= 0) {
                    List<String> running = new ArrayList<>();
                    for (Mutator m : mutators) {
                        if (m.state == Mutator.State.IN_JIT) {
                            running.add("mutator " + m.index + " (" + m.thread.getName() + ")");
                        }
                    }
                    throw new StopTimeoutException("the stop waited " + timeout / 1_000_000 + " ms and these mutators"
                            + " did not reach a poll: " + String.join(", ", running));
                }
                try {
                    changed.awaitNanos(left);
                } catch (InterruptedException e) {
                    interrupted = true;  // the stop still needs every mutator: wait on, and pass the interrupt on
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Under the lock, which it releases while it spins and holds again on return: spins until
     * {@link #changes} moves or {@code until} ({@link System#nanoTime}) passes. The lock is free
     * meanwhile, as in a wait on {@link #changed}, so a parking mutator neither queues on it nor
     * has a sleeping thread to wake: the last one raises the count, and this thread, on its own
     * core, sees it within a cache miss instead of the scheduler's wake-up latency of a blocked
     * thread. It does not yield: on a busy machine a yield gives the core away for a time slice,
     * longer than the wait on the condition that follows the spin.
     */
    private void spinForChange(long until) {
        long seen = changes;
        long start = System.nanoTime();
        lock.unlock();
        try {
            for (long now = start; changes == seen && now - until < 0; now = System.nanoTime()) {
                Thread.onSpinWait();
            }
        } finally {
            lockSpinning();  // the mutator that raised the count holds the lock a few instructions more
        }
    }

    /**
     * Parks {@code self} in the stop in progress, under the lock, which it releases while it waits
     * and holds again on return; running JIT code again unless another stop has begun meanwhile
     * (the caller then parks again).
     */
    private void park(Mutator self, long slot) {
        long stop = parkLocked(self, slot);
        lock.unlock();
        try {
            awaitRelease(self, stop);
        } finally {
            lockSpinning();
        }
        if (!stopping) {
            self.state = Mutator.State.IN_JIT;
        }
    }

    /**
     * Under the lock: marks {@code self} parked at {@code slot} and wakes the stopping thread if no
     * mutator is left running JIT code.
     *
     * @return the stop count now, for {@link #awaitRelease}: the stop in progress ends by raising it
     */
    private long parkLocked(Mutator self, long slot) {
        refuseInsideAction();
        self.state = Mutator.State.PARKED;
        self.parkedSlot = slot;
        if (!anyRunning()) {
            signalChanged();
        }
        return stops;
    }

    /**
     * Without the lock, on the parked mutator's own thread: waits until the stop counted from
     * {@code stop} releases it. Uninterruptible, as the stop needs the thread parked; an interrupt
     * is kept for the caller.
     */
    private static void awaitRelease(Mutator self, long stop) {
        boolean interrupted = false;
        while (self.releasedBy <= stop) {
            LockSupport.park(self);
            if (Thread.interrupted()) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Takes the lock when its holder is about to let go (a mutator that just parked, a stop that
     * just released this thread): tries it for a while before queueing on it, since a queued
     * thread sleeps and must be woken by the holder's unlock, a system call and a wake-up later.
     */
    private void lockSpinning() {
        for (int tries = 0; tries < LOCK_SPINS; tries++) {
            if (lock.tryLock()) {
                return;
            }
            Thread.onSpinWait();
        }
        lock.lock();
    }

    /**
     * Under the lock, at the end of a stop: counts the stop, then gives every parked mutator but
     * {@code collector} the stop's number ({@link Mutator#releasedBy}); {@link #wake} unparks
     * their threads once the lock is free. Each one marks itself running again once it has the
     * lock and finds no stop in progress; until then it counts as parked, which is what it is: a
     * thread that has not run since the release is still at its poll, so a stop that follows at
     * once need not wait for the scheduler to run it.
     */
    private void release(Mutator collector) {
        stops++;
        for (Mutator m : mutators) {
            if (m.state == Mutator.State.PARKED && m != collector) {
                m.releasedBy = stops;
            }
        }
    }

    /**
     * Without the lock, after a stop: unparks the threads of {@code mutators} (the attached ones
     * at its end) that {@code stop} released. One a later stop released already is that stop's
     * to wake; an unpark that comes late, or finds the thread in another wait, only makes that
     * wait look at its condition again.
     */
    private static void wake(Mutator[] mutators, long stop) {
        if (mutators == null) {
            return;
        }
        for (Mutator m : mutators) {
            if (m.releasedBy == stop) {
                LockSupport.unpark(m.thread);
            }
        }
    }

    private boolean anyRunning() {
        for (Mutator m : mutators) {
            if (m.state == Mutator.State.IN_JIT) {
                return true;
            }
        }
        return false;
    }

    /** Every stopped mutator's runs: the innermost from its poll if parked, then each run it left through an exit. */
    private StoppedWorld world(long requested, long stoppedAt) throws StackWalkException {
        StoppedWorld.Liveness liveness = new StoppedWorld.Liveness();
        List<Mutator> stopped = new ArrayList<>();
        List<ThreadStack> stacks = new ArrayList<>();
        int outside = 0;
        for (Mutator m : mutators) {
            List<ThreadStack.Run> runs = new ArrayList<>();
            if (m.state == Mutator.State.PARKED) {
                long entrySlot = m.entrySlot();
                if (entrySlot == 0 || entrySlot <= m.parkedSlot) {
                    throw new StackWalkException("mutator " + m.index + ": its JIT entry slot 0x" + Long.toHexString(entrySlot)
                            + " is not above its poll slot 0x" + Long.toHexString(m.parkedSlot)
                            + " (the entry function must store llvm.addressofreturnaddress() at context offset "
                            + Mutator.ENTRY_SLOT + ")");
                }
                runs.add(new ThreadStack.Run(m.parkedSlot, entrySlot + 8, savedAt(m.parkedSlot)));
            } else if (m.state != Mutator.State.IN_NATIVE) {
                outside++;
                continue;
            }
            for (int i = m.exits.size() - 1; i >= 0; i--) {
                Mutator.Exit e = m.exits.get(i);
                if (e.entrySlot() == 0 || e.entrySlot() <= e.exitSlot()) {
                    throw new StackWalkException("mutator " + m.index + ": the run it left at exit slot 0x"
                            + Long.toHexString(e.exitSlot()) + " has entry slot 0x" + Long.toHexString(e.entrySlot())
                            + ", not above it (the entry function must store llvm.addressofreturnaddress() at context offset "
                            + Mutator.ENTRY_SLOT + ")");
                }
                // The exit function saved the JIT frame's registers as the poll's plan says (or keeps
                // a frame pointer: its RBP is just below the slot).
                runs.add(new ThreadStack.Run(e.exitSlot(), e.entrySlot() + 8, savedAt(e.exitSlot())));
            }
            // The thread's own stack from the lowest saved register up to its outermost entry:
            // mapped, and not written by the thread until it resumes.
            long low = runs.getFirst().returnAddressSlot() - 8;
            for (ThreadStack.Run run : runs) {
                low = Math.min(low, run.registers().lowestSlot());
            }
            long high = runs.getLast().entrySp();
            MemorySegment memory = MemorySegment.ofAddress(low).reinterpret(high - low);
            stopped.add(m);
            stacks.add(new ThreadStack(memory, runs, liveness, "mutator " + m.index + " (" + m.thread.getName() + ")"));
        }
        return new StoppedWorld(this, liveness, List.copyOf(stopped), List.copyOf(stacks), outside, requested,
                stoppedAt);
    }

    /** The context block's mutator, on its own thread; without the lock (see {@link #attached}). */
    private Mutator mutatorOf(MemorySegment context) {
        long index = context.reinterpret(Mutator.CLIENT_AREA).get(ValueLayout.JAVA_LONG, Mutator.INDEX);
        for (Mutator m : attached) {
            if (m.index == index && m.context.address() == context.address()) {
                m.checkThread();
                return m;
            }
        }
        throw new IllegalStateException("a call from an unknown context block 0x" + Long.toHexString(context.address()));
    }
}
