package dev.safepointkit.roots;

import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.SafepointKind;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.registry.UnwindPlan;
import dev.safepointkit.stackmap.LocationKind;
import java.util.Arrays;

/**
 * Walks the JIT frames of one stopped thread and hands each frame's roots to a visitor.
 *
 * <p>x86-64: a thread's stack holds one or more runs of JIT frames ({@link ThreadStack.Run},
 * innermost first; see {@link Mutator} for runs, exits and entries). In each run, from the
 * return-address slot the poll or exit captured, each frame's return address is looked up in the
 * registry; the frame's SP at its call is that slot + 8. Its safepoint's unwind plan
 * ({@link UnwindPlan}, from the object's CFI) says where the caller's frame is: CFA = SP + n, or
 * RBP + n (any frame, dynamic or not), the caller's return address at CFA - 8. An object
 * registered without {@code .eh_frame} has no plans: its fixed-size frames are stepped over by
 * their stack map's frame size, and a dynamic one only through a known frame pointer ([RBP] holds
 * the caller's RBP, [RBP + 8] the return address).
 *
 * <p>Per frame the walk applies what registration prepared: one registry lookup, the safepoint's
 * step to its caller ({@link Frame#walkStep}: a static-size frame is stepped over by its size even
 * when its CFA is RBP-based, so it needs no known RBP), and, for a safepoint whose roots are all
 * SP-relative, their SP offsets, each slot once ({@link Frame#hasRootPlan}), which the batch holds
 * relative to the frame's SP. A frame whose return address is the previous frame's (recursion)
 * skips all of that: the cursor still holds the safepoint, the walker its decoded step, the batch
 * its offsets, and the frame costs a read of its return address, the step's arithmetic and the
 * checks of where it leads. Other safepoints' roots (in registers, RBP-relative) are resolved
 * from the record's locations with the same deduplication and errors, at every frame.
 *
 * <p>A register map goes from frame to frame (as HotSpot's RegisterMap does): for each
 * callee-saved register (RBX, RBP, R12-R15), the stack slot that holds the current frame's value.
 * The run's innermost frame starts from what the poll or exit saved ({@link SavedRegisters});
 * each frame's plan then says which of its caller's values it saved and where (CFA - 8k), the
 * others being unchanged, or lost when the CFI says undefined. A Register root or derived pointer,
 * and an RBP-relative one, at any depth resolves to that slot, and relocation writes there (the
 * callee's restore puts the new value back in the register). A frame without a plan leaves its
 * caller's registers unknown.
 *
 * <p>A run's walk must arrive exactly at the run's entry slot. Anything else ends the walk with a
 * {@link StackWalkException} naming the frame (its depth over the whole stack, its run, the
 * address and what was expected): a foreign return address before the entry (unregistered code,
 * or a call out of JIT code that no exit recorded), a return address inside JIT code with no
 * safepoint, a frame that reaches past the entry or out of the stack, a register root (or an
 * RBP-based CFA or root) whose register no frame saved, a dynamic frame with neither plan nor
 * frame pointer. It never guesses and never skips roots. Nor does it touch a slot it cannot place:
 * every root slot must be an 8-byte aligned slot of its own frame, [SP, the caller's return-address
 * slot), and of its run (a register root: of the stack, and the slot its register was saved in must
 * lie in the frame that saved it); run slots, return-address slots and frame pointers must be
 * aligned. Registration already refuses SP-relative roots outside a static-size frame; the walk
 * checks every frame, so {@link #validate} fails wherever a walk would, before anything is visited.
 *
 * <p>A debug option: a walker made with a {@link FrameUnwinder} (the process unwinder, jit-host's
 * {@code ProcessUnwinder}) compares each run's frame list, once the walk reached the run's entry,
 * with what that unwinder finds from the same slot and registers: every frame's return address and
 * SP, and the run's exit into foreign code. A difference ends the walk with a
 * {@link StackWalkException} naming the first frame that differs and the frame whose step led
 * there, with its unwind plan: a wrong frame size that still lands on a safepoint (a frame skipped,
 * its roots never seen) is caught this way, not only one that lands on garbage. {@link #validate}
 * checks too, so {@link StoppedWorld#walkAll} finds a difference before anything is moved. It costs
 * a native backtrace per run per walk; without it the walk pays one test per frame.
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
    private final RootBatch batch = new RootBatch(frame);
    /** The debug cross-check, or null. */
    private final FrameUnwinder crossCheck;
    /** With {@link #crossCheck}: per frame of the current run, its return address, SP and unwind plan. */
    private long[] runFrames;

    /**
     * A walker that looks frames up in {@code registry}.
     *
     * @param registry where every JIT frame's return address must be registered; it may change
     *     while walks run
     */
    public JitStackWalker(SafepointRegistry registry) {
        this(registry, null);
    }

    /**
     * A walker that looks frames up in {@code registry} and, as a debug check, compares every
     * run's frames with what {@code crossCheck} finds (see the class comment).
     *
     * @param registry where every JIT frame's return address must be registered; it may change
     *     while walks run
     * @param crossCheck the unwinder to agree with, or null for none
     */
    public JitStackWalker(SafepointRegistry registry, FrameUnwinder crossCheck) {
        this.registry = registry;
        this.crossCheck = crossCheck;
        this.runFrames = crossCheck == null ? null : new long[3 * 64];
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
     * @throws IllegalStateException if a coordinator captured {@code stack} and its stop has ended
     */
    public int walk(ThreadStack stack, RootVisitor visitor) throws StackWalkException {
        stack.requireStopped();
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
        // A stop that ended during the walk (its action returned on another thread meanwhile):
        // what was read is not a stopped stack's.
        stack.requireStopped();
        return depth;
    }

    private int walkRun(int r, ThreadStack.Run run, int depth, RootVisitor visitor) throws StackWalkException {
        ThreadStack stack = this.stack;
        RootBatch batch = this.batch;
        Frame frame = this.frame;
        long[] csr = this.csr;
        long slot = run.returnAddressSlot();
        long entrySlot = run.entrySlot();
        if (slot >= entrySlot) {
            throw new StackWalkException("run " + r + ": its return-address slot 0x" + Long.toHexString(slot)
                    + " is not below its entry slot 0x" + Long.toHexString(entrySlot));
        }
        if (((slot | entrySlot) & 7) != 0) {
            throw new StackWalkException("run " + r + ": its return-address slot 0x" + Long.toHexString(slot)
                    + " or entry slot 0x" + Long.toHexString(entrySlot) + " is not 8-byte aligned");
        }
        // Every frame's slots lie below the entry slot, so an entry slot inside the stack bounds
        // them all: the roots are then checked against their frames only.
        stack.word(entrySlot);
        registers = run.registers();
        runStart = depth;
        for (int c = 0; c < UnwindPlan.SLOTS; c++) {
            csr[c] = registers.slotOf(UnwindPlan.registerOf(c));
        }
        // What the walk applies per frame, decoded from the cursor when a lookup fills it: the
        // cursor is reused across runs and walks, so each run starts with a lookup (0 is always
        // looked up). Deep recursion repeats return addresses: the frame cursor then still holds
        // the safepoint of the last lookup of this run, a result as valid as one looked up again,
        // and the batch still holds its root plan.
        long lastReturnAddress = 0;
        boolean cfaFromSp = true;  // CFA = SP + cfaOffset, else RBP + cfaOffset
        long cfaOffset = 0;
        long rules = 0;            // the step's register slots (bits 6c..6c+5 for slot c), 0: none saved; -1: all unknown
        int savedSlot = -1;        // when the frame saved exactly one register (a frame pointer's push): its slot
        long savedOffset = 0;      // and how far below the CFA it saved it
        boolean planned = false;
        while (true) {
            long returnAddress = stack.word(slot);
            long sp = slot + 8;
            batch.at(depth, sp);
            if (returnAddress != lastReturnAddress || returnAddress == 0) {
                if (!registry.lookup(returnAddress, frame)) {
                    throw unregistered(r, depth, returnAddress, slot, entrySlot);
                }
                lastReturnAddress = returnAddress;
                // The step was prepared at registration (UnwindPlan.walkStep): one value says where
                // the caller is and which callee-saved registers this frame saved.
                long step = frame.walkStep();
                if (UnwindPlan.present(step)) {
                    cfaFromSp = UnwindPlan.cfaRegister(step) == UnwindPlan.RSP;
                    cfaOffset = UnwindPlan.cfaOffset(step);
                    rules = step << 4 >>> 28;  // only the slots with a rule: most frames save one or two registers, many none
                    int c = Long.numberOfTrailingZeros(rules) / 6;
                    int k = (int) (rules >>> (6 * c)) & 0x3f;
                    boolean one = rules != 0 && (rules & ~(0x3fL << (6 * c))) == 0 && k != UnwindPlan.UNDEFINED;
                    savedSlot = one ? c : -1;
                    savedOffset = 8L * k;
                } else if (frame.frameSize() >= 0) {
                    cfaFromSp = true;
                    cfaOffset = frame.frameSize() + 8;  // no plan, and a frame size too large for a step
                    rules = -1;  // nothing says what the frame did with its caller's registers
                    savedSlot = -1;
                } else {
                    throw new StackWalkException(batch.describe() + ": no frame size in its stack map");
                }
                planned = frame.hasRootPlan();
                if (planned) {
                    batch.plan(frame);  // SP offsets, deduplicated at registration
                }
            }
            if (crossCheck != null) {
                recordFrame(depth - runStart, returnAddress, sp, frame.unwindPlan());
            }
            long cfa = (cfaFromSp ? sp : cfaRbp()) + cfaOffset;
            long callerSlot = cfa - 8;
            // A frame's roots lie between its SP and its caller's return-address slot, and never
            // past the run's entry slot: a frame whose step is wrong is still visited (its roots
            // are its own, the error comes with its caller), but nothing outside its run is.
            long rootLimit = Math.min(callerSlot, entrySlot);
            if (planned) {
                // The plan's offsets were checked once for sign and alignment (RootBatch.plan); its
                // highest slot (if it has any) must end at or below the caller's return-address slot.
                if (batch.planEnd != 0 && sp + batch.planEnd > rootLimit) {
                    throw rootOutsideFrame(sp + batch.planEnd - 8, sp, rootLimit);
                }
                batch.plannedAt(sp);
            } else {
                collectRoots(stack, depth, sp, rootLimit);
            }
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
                if (crossCheck != null) {
                    crossCheck(r, run, depth);
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
            if ((callerSlot & 7) != 0) {
                throw new StackWalkException(batch.describe() + ": caller's return address slot 0x" + Long.toHexString(callerSlot)
                        + " is not 8-byte aligned (" + (cfaFromSp ? "SP" : "RBP") + " + " + cfaOffset + " - 8)");
            }
            if (savedSlot >= 0) {
                long at = cfa - savedOffset;
                if (at < sp || at >= callerSlot) {
                    throw savedOutsideFrame(UnwindPlan.registerOf(savedSlot), at, sp, callerSlot);
                }
                csr[savedSlot] = at;
            } else if (rules != 0) {
                updateRegisterMap(rules, cfa, sp);
            }
            slot = callerSlot;
        }
    }

    /** The error for a return address the registry has no safepoint at: inside JIT code, or foreign. */
    private StackWalkException unregistered(int r, int depth, long returnAddress, long slot, long entrySlot) {
        if (registry.locate(returnAddress, frame)) {
            return new StackWalkException("frame " + depth + ": return address 0x" + Long.toHexString(returnAddress)
                    + " is inside JIT code (" + (frame.hasFunction() ? frame.functionName() + " in " : "")
                    + frame.objectName() + ") but is not a safepoint");
        }
        return new StackWalkException("frame " + depth + " (run " + r + "): return address 0x"
                + Long.toHexString(returnAddress) + " at slot 0x" + Long.toHexString(slot)
                + " is foreign code, but the run enters JIT code at slot 0x" + Long.toHexString(entrySlot)
                + ": a frame of unregistered code, or a call out of JIT code that no exit recorded");
    }

    /**
     * The register map from a frame to its caller: each slot with a rule in {@code rules} (the
     * step's slots shifted down, or -1 when nothing says what the frame did with them) now names
     * CFA - 8k, or -1 when the caller's value is undefined or unknown; the others are unchanged.
     */
    private void updateRegisterMap(long rules, long cfa, long sp) throws StackWalkException {
        long[] csr = this.csr;
        if (rules < 0) {
            for (int c = 0; c < UnwindPlan.SLOTS; c++) {
                csr[c] = -1;
            }
            return;
        }
        for (long left = rules; left != 0; ) {
            int c = Long.numberOfTrailingZeros(left) / 6;
            int k = (int) (rules >>> (6 * c)) & 0x3f;
            long at = cfa - 8L * k;
            if (k != UnwindPlan.UNDEFINED && (at < sp || at >= cfa - 8)) {
                throw savedOutsideFrame(UnwindPlan.registerOf(c), at, sp, cfa - 8);
            }
            csr[c] = k == UnwindPlan.UNDEFINED ? -1 : at;
            left &= ~(0x3fL << (6 * c));
        }
    }

    /** A slot where the frame's plan says it saved its caller's register, outside the frame: the error naming both. */
    private StackWalkException savedOutsideFrame(int register, long at, long sp, long callerSlot) {
        return new StackWalkException(batch.describe() + ": its unwind plan saves R#" + register + " at 0x" + Long.toHexString(at)
                + ", outside its frame [0x" + Long.toHexString(sp) + ", 0x" + Long.toHexString(callerSlot) + ")");
    }

    /** A root slot outside the frame that names it: below its SP, or at or above its caller's return-address slot (or the run's entry slot). */
    private StackWalkException rootOutsideFrame(long slot, long sp, long callerSlot) {
        return new StackWalkException(batch.describe() + ": root slot 0x" + Long.toHexString(slot) + " (SP + " + (slot - sp)
                + ") lies outside its frame [0x" + Long.toHexString(sp) + ", 0x" + Long.toHexString(callerSlot)
                + "), whose top is the frame's return address");
    }

    private static final int RBP_SLOT = UnwindPlan.slotOf(RBP);

    private void recordFrame(int k, long returnAddress, long sp, long plan) {
        if (3 * k + 3 > runFrames.length) {
            runFrames = Arrays.copyOf(runFrames, 2 * runFrames.length);
        }
        runFrames[3 * k] = returnAddress;
        runFrames[3 * k + 1] = sp;
        runFrames[3 * k + 2] = plan;
    }

    /**
     * The debug check of a walked run (frames {@code runStart} to {@code end - 1}): the cross-check
     * unwinder, started from the run's slot with the registers the poll or exit saved, must find
     * the same frames, and then the run's exit into foreign code at its entry slot.
     */
    private void crossCheck(int r, ThreadStack.Run run, int end) throws StackWalkException {
        int n = end - runStart;
        long[] saved = new long[UnwindPlan.SLOTS];
        int known = 0;
        for (int c = 0; c < UnwindPlan.SLOTS; c++) {
            long at = run.registers().slotOf(UnwindPlan.registerOf(c));
            if (at >= 0) {
                saved[c] = stack.word(at);
                known |= 1 << c;
            }
        }
        long[] found = new long[2 * (n + 1)];
        int count;
        try {
            count = crossCheck.frames(run.returnAddressSlot(), saved, known, found);
        } catch (RuntimeException e) {
            throw new StackWalkException("run " + r + ": the cross-check unwinder failed: " + e.getMessage(), e);
        }
        for (int k = 0; k <= n; k++) {
            long returnAddress = k < n ? runFrames[3 * k] : stack.word(run.entrySlot());
            long sp = k < n ? runFrames[3 * k + 1] : run.entrySp();
            if (k >= count || found[2 * k] != returnAddress || found[2 * k + 1] != sp) {
                String walked = (k < n ? "frame " + (runStart + k) + " (" + name(returnAddress) + ")"
                        : "the exit of run " + r + " to foreign code") + " at SP 0x" + Long.toHexString(sp)
                        + ", return address 0x" + Long.toHexString(returnAddress);
                String unwound = k >= count ? "ends after " + count + " frames of run " + r
                        : "has SP 0x" + Long.toHexString(found[2 * k + 1]) + ", return address 0x"
                        + Long.toHexString(found[2 * k]) + " (" + name(found[2 * k]) + ")";
                String step = k == 0 ? "" : ": the step from frame " + (runStart + k - 1) + " ("
                        + name(runFrames[3 * (k - 1)]) + ", " + UnwindPlan.describe(runFrames[3 * (k - 1) + 2])
                        + ") disagrees with the process unwinder";
                throw new StackWalkException("the walker has " + walked + ", but the cross-check unwinder " + unwound + step);
            }
        }
    }

    /** A return address's function and object, for a message; the error path only. */
    private String name(long returnAddress) {
        Frame f = new Frame();
        if (!registry.locate(returnAddress, f)) {
            return "foreign code";
        }
        return (f.hasFunction() && f.functionName() != null ? f.functionName() + " in " : "") + f.objectName();
    }

    private ThreadStack stack;
    private SavedRegisters registers;
    private int runStart;      // depth of the current run's innermost frame, whose registers the poll or exit saved
    /** The register map: per callee-saved register ({@link UnwindPlan} slot order), where the current frame's value is, or -1. */
    private final long[] csr = new long[UnwindPlan.SLOTS];

    /** The current frame's RBP for its RBP-based step: a dynamic frame's, with or without CFI. */
    private long cfaRbp() throws StackWalkException {
        return rbp(UnwindPlan.present(frame.unwindPlan()) ? "its CFA is RBP-based" : "dynamic frame size, no unwind plan");
    }

    /** The current frame's RBP, read from the slot the register map names; an error naming the frame and {@code why} when none does. */
    private long rbp(String why) throws StackWalkException {
        long at = csr[RBP_SLOT];
        if (at < 0) {
            throw new StackWalkException(batch.describe() + ": " + why + ", and no frame pointer is known (no frame "
                    + (batch.depth() == runStart ? "below it and no poll" : "below it") + " saved RBP)");
        }
        long rbp = stack.word(at);
        if (((at | rbp) & 7) != 0) {
            throw new StackWalkException(batch.describe() + ": its frame pointer 0x" + Long.toHexString(rbp) + " (saved at 0x"
                    + Long.toHexString(at) + ") is not 8-byte aligned");
        }
        return rbp;
    }

    private void collectRoots(ThreadStack stack, int depth, long sp, long callerSlot) throws StackWalkException {
        batch.resetAbsolute();
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
            long baseSlot = slot(stack, base, sp, depth, callerSlot);
            long derivedSlot = slot(stack, derived, sp, depth, callerSlot);
            int b = batch.addBase(baseSlot);
            if (derivedSlot != baseSlot) {
                batch.addDerived(derivedSlot, b);
            }
        }
        for (int i = 0; i < frame.gcAllocaCount(); i++) {
            int alloca = frame.gcAlloca(i);
            // A gc-live alloca is Direct: reg + offset is the slot that holds the pointer.
            batch.addBase(inFrame(address(frame.register(alloca), frame.offset(alloca), sp, depth), sp, callerSlot));
        }
    }

    /** {@code slot}, a root slot of the current frame, once checked to be an aligned slot of it. */
    private long inFrame(long slot, long sp, long callerSlot) throws StackWalkException {
        if (slot < sp || slot > callerSlot - 8) {
            throw rootOutsideFrame(slot, sp, callerSlot);
        }
        if ((slot & 7) != 0) {
            throw new StackWalkException(batch.describe() + ": root slot 0x" + Long.toHexString(slot) + " (SP + " + (slot - sp)
                    + ") is not 8-byte aligned");
        }
        return slot;
    }

    private boolean isConstant(int location) {
        LocationKind k = frame.kind(location);
        return k == LocationKind.CONSTANT || k == LocationKind.CONSTANT_INDEX;
    }

    /** The stack address that holds the value of a base or derived location. */
    private long slot(ThreadStack stack, int location, long sp, int depth, long callerSlot) throws StackWalkException {
        return switch (frame.kind(location)) {
            case INDIRECT -> inFrame(address(frame.register(location), frame.offset(location), sp, depth), sp, callerSlot);
            case REGISTER -> savedRoot(registerSlot(location, depth), location);
            default -> throw new StackWalkException(batch.describe() + ": a GC pointer in a " + frame.kind(location)
                    + " location");
        };
    }

    /**
     * A register root's slot: a callee's save, checked against the callee's frame when the step
     * recorded it, or the poll's, which must be an aligned slot of the stack.
     */
    private long savedRoot(long slot, int location) throws StackWalkException {
        long offset = slot - stack.memory().address();
        if (offset < 0 || offset > stack.memory().byteSize() - 8 || (slot & 7) != 0) {
            throw new StackWalkException(batch.describe() + ": a root in register R#" + frame.register(location) + " saved at 0x"
                    + Long.toHexString(slot) + ", " + ((slot & 7) != 0 ? "not 8-byte aligned" : "outside the stack"));
        }
        return slot;
    }

    /** The stack slot that holds the current frame's value of a Register location's register. */
    private long registerSlot(int location, int depth) throws StackWalkException {
        int reg = frame.register(location);
        int c = UnwindPlan.slotOf(reg);
        long saved = c >= 0 ? csr[c] : depth == runStart ? registers.slotOf(reg) : -1;
        if (saved < 0) {
            throw new StackWalkException(batch.describe() + ": a root in register R#" + reg + " and no saved value for it"
                    + (depth == runStart ? " from the poll" : c < 0 ? " (a caller-saved register, lost at the call)"
                    : " (no frame between it and the poll saved it)"));
        }
        return saved;
    }

    /**
     * The value of a location of the frame being visited: a deopt value of a statepoint, a live
     * value of a stackmap or patchpoint record, or any other location of its record, at any depth.
     * Register: the register's value where the register map says it is (the poll's save for the
     * run's innermost frame, a callee's save for the frames above); Direct: the address register +
     * offset; Indirect: the value stored at register + offset; Constant and ConstantIndex: the
     * constant. Values narrower than 8 bytes are the low bytes, zero-extended.
     *
     * <p>Only on the walking thread, from a visitor's {@code visitFrame}, for the frame it is
     * given; the location handle comes from that frame ({@code batch.frame().deopt(i)},
     * {@code live(i)}, ...).
     *
     * @param location a location handle of the visited frame's safepoint
     * @return its value
     * @throws StackWalkException if the value's register was saved by no frame, or it is addressed
     *     from a register the walker cannot recover; the message names the frame
     * @throws IllegalStateException outside a visitor's call
     */
    public long frameValue(int location) throws StackWalkException {
        if (stack == null) {
            throw new IllegalStateException("frame values are read only while a frame is visited");
        }
        int depth = batch.depth();
        long sp = batch.sp();
        long value = switch (frame.kind(location)) {
            case CONSTANT, CONSTANT_INDEX -> frame.constant(location);
            case DIRECT -> address(frame.register(location), frame.offset(location), sp, depth);
            case INDIRECT -> stack.word(address(frame.register(location), frame.offset(location), sp, depth));
            case REGISTER -> stack.word(registerSlot(location, depth));
        };
        int size = frame.size(location);
        LocationKind k = frame.kind(location);
        return size >= 8 || k == LocationKind.CONSTANT || k == LocationKind.CONSTANT_INDEX || k == LocationKind.DIRECT
                ? value : value & ((1L << (8 * size)) - 1);
    }

    private long address(int register, int offset, long sp, int depth) throws StackWalkException {
        if (register == RSP) {
            return sp + offset;
        }
        if (register == RBP) {
            return rbp("a root addressed from RBP") + offset;
        }
        throw new StackWalkException(batch.describe() + ": a root addressed from R#" + register + ", which the walker cannot recover");
    }
}
