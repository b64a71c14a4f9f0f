package dev.safepointkit.roots;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Stops every mutator thread at a safepoint so a collector can scan and fix their stacks.
 *
 * <p>Each thread that runs JIT code attaches once ({@link #attach}) and brackets every call into
 * JIT code with {@link Mutator#enter}. A stop sets every mutator's poll word; a thread in JIT code
 * reaches its next poll, which calls {@link #poll} and parks there with its stack captured; a thread
 * outside JIT code is stopped already and may not enter until the stop ends. When no mutator is
 * left running JIT code the {@link WorldAction} runs with every parked stack, then the poll words
 * are cleared and the mutators resume.
 *
 * <p>The collector is either a thread of its own or a mutator in a slow path (an allocation that
 * found no memory): that mutator passes its own poll slot and counts as parked. Two stops never
 * overlap: a mutator asking for a stop while another runs parks first and is scanned by the other.
 *
 * <p>With {@link #collectAtEveryPoll} the poll words stay set and every poll stops the world and
 * runs the action: a stress mode that makes a stale root show up at once.
 *
 * <p>Thread safe. Stops are rare and short next to JIT code, so state changes use one lock; the
 * fast path in JIT code is only the load of the poll word.
 */
public final class SafepointCoordinator {
    private final long clientBytes;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();   // a mutator parked or left JIT code
    private final Condition resumed = lock.newCondition();   // a stop ended
    private final List<Mutator> mutators = new ArrayList<>();
    private boolean stopping;
    private long stops;
    private volatile WorldAction everyPoll;

    /** @param clientBytes size of the runtime's own area in every mutator's context block */
    public SafepointCoordinator(long clientBytes) {
        if (clientBytes < 0) {
            throw new IllegalArgumentException("clientBytes " + clientBytes);
        }
        this.clientBytes = clientBytes;
    }

    /** Attaches the calling thread as a mutator. */
    public Mutator attach() {
        lock.lock();
        try {
            for (Mutator m : mutators) {
                if (m.thread == Thread.currentThread()) {
                    throw new IllegalStateException(Thread.currentThread() + " is already attached as mutator " + m.index);
                }
            }
            Mutator m = new Mutator(this, nextIndex(), clientBytes);
            m.requestPoll(everyPoll != null);
            mutators.add(m);
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

    /** Mutators attached now. */
    public int mutatorCount() {
        lock.lock();
        try {
            return mutators.size();
        } finally {
            lock.unlock();
        }
    }

    /** Stops the world completed so far. */
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
     * it, the polling thread acting as the collector. {@code null} ends it.
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

    void enter(Mutator m) {
        lock.lock();
        try {
            if (m.state != Mutator.State.OUTSIDE) {
                throw new IllegalStateException("mutator " + m.index + " is already in JIT code: nested entries from Java are not supported");
            }
            while (stopping) {
                resumed.awaitUninterruptibly();
            }
            m.state = Mutator.State.IN_JIT;
        } finally {
            lock.unlock();
        }
    }

    void leave(Mutator m) {
        lock.lock();
        try {
            m.state = Mutator.State.OUTSIDE;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    void detach(Mutator m) {
        lock.lock();
        try {
            m.checkThread();
            if (m.state != Mutator.State.OUTSIDE) {
                throw new IllegalStateException("mutator " + m.index + " is still in JIT code");
            }
            while (stopping) {
                resumed.awaitUninterruptibly();
            }
            mutators.remove(m);
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /**
     * The poll: called on a mutator thread by the JIT code's poll function, with the address of
     * the return-address slot into the polling JIT frame. Parks while a stop is in progress;
     * returns at once if none is (the poll word may be seen late).
     */
    public void poll(MemorySegment context, long returnAddressSlot) throws StackWalkException {
        Mutator self = mutatorOf(context);
        WorldAction action = everyPoll;
        if (action != null) {
            stopTheWorld(self, returnAddressSlot, action);
            return;
        }
        lock.lock();
        try {
            self.polls++;
            while (stopping) {
                park(self, returnAddressSlot);
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * A method handle {@code (MemorySegment context, MemorySegment slot) void} for the poll upcall:
     * bind it with the JIT host's {@code defineUpcall}. It never throws (an exception cannot cross
     * an upcall): a failure of a stress-mode action is handed to {@code failures}.
     */
    public MethodHandle pollUpcall(Consumer<Throwable> failures) {
        try {
            MethodHandle poll = MethodHandles.lookup().findStatic(SafepointCoordinator.class, "pollUpcall",
                    MethodType.methodType(void.class, SafepointCoordinator.class, Consumer.class,
                            MemorySegment.class, MemorySegment.class));
            return MethodHandles.insertArguments(poll, 0, this, failures);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    private static void pollUpcall(SafepointCoordinator c, Consumer<Throwable> failures,
                                   MemorySegment context, MemorySegment slot) {
        try {
            c.poll(context, slot.address());
        } catch (Throwable t) {
            failures.accept(t);
        }
    }

    /**
     * Stops every mutator, runs {@code action}, and resumes them. Called from a thread that is not a
     * mutator ({@code self} null), or from a mutator in a runtime slow path, which passes the slot of
     * its return address into the JIT frame that called the slow path and is scanned like the
     * others. A failure of the action is rethrown after the mutators resume.
     */
    public void stopTheWorld(Mutator self, long selfSlot, WorldAction action) throws StackWalkException {
        lock.lock();
        try {
            if (self != null) {
                self.checkThread();
                if (self.state != Mutator.State.IN_JIT) {
                    throw new IllegalStateException("mutator " + self.index + " asks for a stop from outside JIT code");
                }
                self.polls++;
            }
            while (stopping) {
                if (self != null) {
                    park(self, selfSlot);  // another stop is on: be scanned by it, then start ours
                } else {
                    resumed.awaitUninterruptibly();
                }
            }
            stopping = true;
            long requested = System.nanoTime();
            if (self != null) {
                self.state = Mutator.State.PARKED;
                self.parkedSlot = selfSlot;
            }
            try {
                for (Mutator m : mutators) {
                    m.requestPoll(true);
                }
                while (anyRunning()) {
                    changed.awaitUninterruptibly();
                }
                action.run(world(requested));
            } finally {
                boolean stress = everyPoll != null;
                for (Mutator m : mutators) {
                    m.requestPoll(stress);
                }
                if (self != null) {
                    self.state = Mutator.State.IN_JIT;
                }
                stopping = false;
                stops++;
                resumed.signalAll();
            }
        } finally {
            lock.unlock();
        }
    }

    private void park(Mutator self, long slot) {
        self.state = Mutator.State.PARKED;
        self.parkedSlot = slot;
        changed.signalAll();
        long stop = stops;
        while (stops == stop) {
            resumed.awaitUninterruptibly();
        }
        self.state = Mutator.State.IN_JIT;
    }

    private boolean anyRunning() {
        for (Mutator m : mutators) {
            if (m.state == Mutator.State.IN_JIT) {
                return true;
            }
        }
        return false;
    }

    private StoppedWorld world(long requested) throws StackWalkException {
        List<Mutator> parked = new ArrayList<>();
        List<ThreadStack> stacks = new ArrayList<>();
        int outside = 0;
        for (Mutator m : mutators) {
            if (m.state != Mutator.State.PARKED) {
                outside++;
                continue;
            }
            long entrySlot = m.entrySlot();
            if (entrySlot == 0 || entrySlot < m.parkedSlot) {
                throw new StackWalkException("mutator " + m.index + ": its JIT entry slot 0x" + Long.toHexString(entrySlot)
                        + " is not above its poll slot 0x" + Long.toHexString(m.parkedSlot)
                        + " (the entry function must store llvm.addressofreturnaddress() at context offset " + Mutator.ENTRY_SLOT + ")");
            }
            long entrySp = entrySlot + 8;
            // The parked thread's own stack from the poll function's saved RBP up to its entry:
            // mapped, and not touched by the thread until it resumes.
            long low = m.parkedSlot - 8;
            MemorySegment memory = MemorySegment.ofAddress(low).reinterpret(entrySp - low);
            parked.add(m);
            stacks.add(new ThreadStack(memory, m.parkedSlot, entrySp, SavedRegisters.framePointerBelow(m.parkedSlot)));
        }
        return new StoppedWorld(List.copyOf(parked), List.copyOf(stacks), outside, requested, System.nanoTime());
    }

    private Mutator mutatorOf(MemorySegment context) {
        long index = context.reinterpret(Mutator.CLIENT_AREA).get(ValueLayout.JAVA_LONG, Mutator.INDEX);
        lock.lock();
        try {
            for (Mutator m : mutators) {
                if (m.index == index && m.context.address() == context.address()) {
                    m.checkThread();
                    return m;
                }
            }
        } finally {
            lock.unlock();
        }
        throw new IllegalStateException("poll from an unknown context block 0x" + Long.toHexString(context.address()));
    }
}
