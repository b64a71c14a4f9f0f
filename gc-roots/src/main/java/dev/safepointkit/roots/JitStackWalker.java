package dev.safepointkit.roots;

import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.SafepointKind;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.LocationKind;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Walks the JIT frames of one stopped thread and hands each frame's roots to a visitor.
 *
 * <p>x86-64: a thread's stack holds one or more runs of JIT frames ({@link ThreadStack.Run},
 * innermost first; see {@link Mutator} for runs, exits and entries). In each run, from the
 * return-address slot the poll or exit captured, each frame's return address is looked up in the
 * registry; the frame's SP at its call is that slot + 8, and its caller's return address lies at
 * SP + frame size. A frame whose size is dynamic (UINT64_MAX) is walked through its frame pointer:
 * [RBP] holds the caller's RBP and [RBP + 8] the return address. RBP is known for a run's
 * innermost frame when the poll or exit saved it ({@link SavedRegisters}), and for each caller of
 * a frame whose function keeps a frame pointer (its prologue pushed the caller's RBP below its
 * return address), so chains through fixed-size frames work when those keep frame pointers
 * (LLVM's {@code "frame-pointer"="all"}).
 *
 * <p>A run's walk must arrive exactly at the run's entry slot. Anything else ends the walk with a
 * {@link StackWalkException} naming the frame (its depth over the whole stack, its run, the
 * address and what was expected): a foreign return address before the entry (unregistered code,
 * or a call out of JIT code that no exit recorded), a return address inside JIT code with no
 * safepoint, a frame that reaches past the entry or out of the stack, a register root with no
 * saved value, a dynamic frame with no frame pointer. It never guesses and never skips roots.
 *
 * <p>Not thread safe: one walker per collecting thread; it reuses its Frame and batch, so a walk
 * allocates nothing once warm. Safe while other threads register and unregister code: registry
 * lookups are wait-free and their results stay valid.
 */
public final class JitStackWalker {
    static final int RBP = 6;
    static final int RSP = 7;
    private static final RootVisitor NO_VISIT = (batch, stack) -> { };

    private final SafepointRegistry registry;
    private final Frame frame = new Frame();
    private final RootBatch batch = new RootBatch();

    /**
     * A walker that looks frames up in {@code registry}.
     *
     * @param registry where every JIT frame's return address must be registered; it may change
     *     while walks run
     */
    public JitStackWalker(SafepointRegistry registry) {
        this.registry = registry;
    }

    /**
     * Walks every frame of {@code stack} and resolves every root location, visiting nothing: what
     * a collector runs over every stopped stack before it moves anything.
     *
     * @param stack a stack captured by a stop, whose thread is still stopped
     * @return the number of JIT frames walked, over all runs
     * @throws StackWalkException if the stack cannot be walked precisely (see the class comment);
     *     the message names the frame
     */
    public int validate(ThreadStack stack) throws StackWalkException {
        return walk(stack, NO_VISIT);
    }

    /**
     * Walks {@code stack}, every run, innermost first, and calls {@code visitor} once per JIT
     * frame with that frame's roots, on this thread.
     *
     * <p>Visiting is not deferred: when a frame turns out unwalkable, the visitor has already seen
     * the frames inside it. Run {@link #validate} first (as {@link StoppedWorld#walkAll} does) when
     * a visitor changes anything.
     *
     * @param stack a stack captured by a stop, whose thread is still stopped
     * @param visitor gets each frame's batch, valid only during its call
     * @return the number of JIT frames visited
     * @throws StackWalkException if the stack cannot be walked precisely (see the class comment),
     *     or the visitor throws one
     */
    public int walk(ThreadStack stack, RootVisitor visitor) throws StackWalkException {
        this.stack = stack;
        int depth = 0;
        try {
            long innerEntry = Long.MIN_VALUE;
            for (int r = 0; r < stack.runs().size(); r++) {
                ThreadStack.Run run = stack.runs().get(r);
                if (run.returnAddressSlot() <= innerEntry) {
                    throw new StackWalkException("run " + r + ": its return-address slot 0x" + Long.toHexString(run.returnAddressSlot())
                            + " is not above the entry slot 0x" + Long.toHexString(innerEntry) + " of the run inside it");
                }
                depth = walkRun(r, run, depth, visitor);
                innerEntry = run.entrySlot();
            }
        } finally {
            this.stack = null;
        }
        return depth;
    }

    private int walkRun(int r, ThreadStack.Run run, int depth, RootVisitor visitor) throws StackWalkException {
        slot = run.returnAddressSlot();
        long entrySlot = run.entrySlot();
        if (slot >= entrySlot) {
            throw new StackWalkException("run " + r + ": its return-address slot 0x" + Long.toHexString(slot)
                    + " is not below its entry slot 0x" + Long.toHexString(entrySlot));
        }
        registers = run.registers();
        runStart = depth;
        // The frame pointer is known for the innermost frame if the poll saved it, then for the
        // caller of every frame that keeps one; after a fixed-size frame without one it is
        // unknown (that frame may have used RBP for anything; only unwind info would say).
        rbp = registers.slotOf(RBP) >= 0 ? stack.word(registers.slotOf(RBP)) : -1;
        calleeStart = 0;
        while (true) {
            long returnAddress = stack.word(slot);
            if (!registry.lookup(returnAddress, frame)) {
                if (registry.locate(returnAddress, frame)) {
                    throw new StackWalkException("frame " + depth + ": return address 0x" + Long.toHexString(returnAddress)
                            + " is inside JIT code (" + (frame.hasFunction() ? frame.functionName() + " in " : "")
                            + frame.objectName() + ") but is not a safepoint");
                }
                throw new StackWalkException("frame " + depth + " (run " + r + "): return address 0x"
                        + Long.toHexString(returnAddress) + " at slot 0x" + Long.toHexString(slot)
                        + " is foreign code, but the run enters JIT code at slot 0x" + Long.toHexString(entrySlot)
                        + ": a frame of unregistered code, or a call out of JIT code that no exit recorded");
            }
            long sp = slot + 8;
            batch.reset(depth, sp, frame);
            long frameSize = frame.frameSize();
            long callerSlot;
            if (frame.hasDynamicFrameSize()) {
                long fp = rbp();
                if (fp < 0) {
                    throw new StackWalkException(batch.describe() + ": dynamic frame size and no known frame pointer");
                }
                callerSlot = fp + 8;
            } else if (frameSize < 0) {
                throw new StackWalkException(batch.describe() + ": no frame size in its stack map");
            } else {
                callerSlot = sp + frameSize;
            }
            collectRoots(stack, depth, sp);
            visitor.visitFrame(batch, stack);
            depth++;
            if (callerSlot == entrySlot) {
                // The entry: the return address there must lead out of JIT code. One into JIT code
                // means the slot was recorded in the middle of a run, and the frames above are unwalked.
                long out = stack.word(entrySlot);
                if (registry.locate(out, frame)) {
                    throw new StackWalkException("frame " + depth + " (run " + r + "): the run's entry slot 0x"
                            + Long.toHexString(entrySlot) + " holds a return address into JIT code (0x" + Long.toHexString(out)
                            + ", " + (frame.hasFunction() ? frame.functionName() + " in " : "") + frame.objectName()
                            + "), not out of it: an entry slot recorded in the middle of a run");
                }
                return depth;
            }
            if (callerSlot <= slot) {
                throw new StackWalkException(batch.describe() + ": caller's return address at 0x" + Long.toHexString(callerSlot)
                        + " is not above this frame's");
            }
            if (callerSlot > entrySlot) {
                // Passing the entry means a frame size was wrong; stopping there would skip roots.
                throw new StackWalkException(batch.describe() + ": caller's return address slot 0x" + Long.toHexString(callerSlot)
                        + " lies beyond the thread's entry SP: run " + r + " enters JIT code at slot 0x"
                        + Long.toHexString(entrySlot));
            }
            if (frame.hasDynamicFrameSize()) {
                rbp = stack.word(rbp);  // the caller's RBP, pushed by this frame's prologue
                calleeStart = 0;
            } else {
                rbp = -1;               // known only if this frame keeps a frame pointer: asked when needed
                calleeStart = frame.functionStart();
            }
            slot = callerSlot;
        }
    }

    private ThreadStack stack;
    private SavedRegisters registers;
    private int runStart;      // depth of the current run's innermost frame, whose registers the poll or exit saved
    private long slot;
    private long rbp;          // the current frame's RBP, or -1 while not known
    private long calleeStart;  // start of the current frame's fixed-size callee, 0 when there is none to ask

    /**
     * The current frame's RBP: known from the poll or a dynamic callee, or, after a fixed-size
     * callee whose function keeps a frame pointer, the value that callee's prologue pushed just
     * below its return address. -1 when not known.
     */
    private long rbp() throws StackWalkException {
        if (rbp < 0 && calleeStart != 0) {
            if (hasFramePointer(calleeStart)) {
                rbp = stack.word(slot - 8);
            }
            calleeStart = 0;
        }
        return rbp;
    }

    /**
     * Whether the function starts with {@code push %rbp; mov %rsp,%rbp} (after an optional
     * {@code endbr64}): the prologue LLVM emits for a frame pointer. The code is mapped while a
     * frame of it is on a stopped thread's stack (the thread will return into it).
     */
    static boolean hasFramePointer(long functionStart) {
        int first = CODE.get(CODE_INT, functionStart);
        if (first == ENDBR64) {
            first = CODE.get(CODE_INT, functionStart + 4);
        }
        return first == PUSH_RBP_MOV_RSP_RBP;
    }

    private static final MemorySegment CODE = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    private static final ValueLayout.OfInt CODE_INT = ValueLayout.JAVA_INT_UNALIGNED;
    private static final int ENDBR64 = 0xfa1e0ff3;               // f3 0f 1e fa
    private static final int PUSH_RBP_MOV_RSP_RBP = 0xe5894855;  // 55 48 89 e5

    private void collectRoots(ThreadStack stack, int depth, long sp) throws StackWalkException {
        if (frame.kind() != SafepointKind.STATEPOINT) {
            return;  // stackmap and patchpoint records carry no GC roots
        }
        for (int i = 0; i < frame.pairCount(); i++) {
            int base = frame.base(i);
            int derived = frame.derived(i);
            if (isConstant(base)) {
                if (!isConstant(derived)) {
                    throw new StackWalkException(batch.describe() + ": pair " + i + " derives a pointer from a constant base");
                }
                continue;  // a null or constant pointer: nothing to relocate
            }
            long baseSlot = slot(stack, base, sp, depth);
            long derivedSlot = slot(stack, derived, sp, depth);
            int b = batch.addBase(baseSlot);
            if (derivedSlot != baseSlot) {
                batch.addDerived(derivedSlot, b);
            }
        }
        for (int i = 0; i < frame.gcAllocaCount(); i++) {
            int alloca = frame.gcAlloca(i);
            // A gc-live alloca is Direct: reg + offset is the slot that holds the pointer.
            batch.addBase(address(frame.register(alloca), frame.offset(alloca), sp, depth));
        }
    }

    private boolean isConstant(int location) {
        LocationKind k = frame.kind(location);
        return k == LocationKind.CONSTANT || k == LocationKind.CONSTANT_INDEX;
    }

    /** The stack address that holds the value of a base or derived location. */
    private long slot(ThreadStack stack, int location, long sp, int depth) throws StackWalkException {
        return switch (frame.kind(location)) {
            case INDIRECT -> address(frame.register(location), frame.offset(location), sp, depth);
            case REGISTER -> {
                long saved = depth == runStart ? registers.slotOf(frame.register(location)) : -1;
                if (saved < 0) {
                    throw new StackWalkException(batch.describe() + ": a root in register R#" + frame.register(location)
                            + " and no saved value for it" + (depth == runStart ? " from the poll"
                            : " (only the polling frame's registers are known)"));
                }
                yield saved;
            }
            default -> throw new StackWalkException(batch.describe() + ": a GC pointer in a " + frame.kind(location)
                    + " location");
        };
    }

    private long address(int register, int offset, long sp, int depth) throws StackWalkException {
        if (register == RSP) {
            return sp + offset;
        }
        if (register == RBP && rbp() >= 0) {
            return rbp + offset;
        }
        throw new StackWalkException(batch.describe() + ": a root addressed from R#" + register
                + (register == RBP ? " and the frame pointer is not known" : ", which the walker cannot recover"));
    }
}
