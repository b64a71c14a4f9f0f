package dev.safepointkit.roots;

import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.SafepointKind;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.LocationKind;

/**
 * Walks the JIT frames of one stopped thread and hands each frame's roots to a visitor.
 *
 * <p>x86-64: from the return-address slot the poll captured, each frame's return address is
 * looked up in the registry; the frame's SP at its call is that slot + 8, and its caller's
 * return address lies at SP + frame size. A frame whose size is dynamic (UINT64_MAX) is walked
 * through its frame pointer: [RBP] holds the caller's RBP and [RBP + 8] the return address. The
 * walk ends at the first return address outside JIT code, which must lie below the thread's
 * entry SP. Anything else that cannot be resolved (a return address inside JIT code with no
 * safepoint, a frame that reaches past the entry SP or out of the stack, a register root with no
 * saved value, a dynamic frame with no frame pointer) ends the walk with a
 * {@link StackWalkException} naming the frame: it never guesses and never skips roots.
 *
 * <p>Not thread safe: one walker per collecting thread; it reuses its Frame and batch, so a walk
 * allocates nothing once warm. Safe while other threads register and unregister code: registry
 * lookups are wait-free and their results stay valid.
 */
public final class JitStackWalker {
    static final int RBP = 6;
    static final int RSP = 7;

    private final SafepointRegistry registry;
    private final Frame frame = new Frame();
    private final RootBatch batch = new RootBatch();

    public JitStackWalker(SafepointRegistry registry) {
        this.registry = registry;
    }

    /** Walks {@code stack}; returns the number of JIT frames visited. */
    public int walk(ThreadStack stack, RootVisitor visitor) throws StackWalkException {
        long slot = stack.returnAddressSlot();
        // The frame pointer is known for the innermost frame if the poll saved it, and along a
        // chain of dynamic frames; after a fixed-size frame it is unknown (that frame may have
        // used RBP for anything; only unwind info would say).
        long rbp = stack.registers().slotOf(RBP) >= 0 ? stack.word(stack.registers().slotOf(RBP)) : -1;
        int depth = 0;
        while (true) {
            if (slot > stack.entrySp() - 8) {
                // A valid walk ends at a foreign return address below the entry SP; passing it
                // means a frame size was wrong, and stopping quietly would skip roots.
                throw new StackWalkException("frame " + depth + ": return address slot 0x" + Long.toHexString(slot)
                        + " lies beyond the thread's entry SP 0x" + Long.toHexString(stack.entrySp()));
            }
            long returnAddress = stack.word(slot);
            if (!registry.lookup(returnAddress, frame)) {
                if (registry.locate(returnAddress, frame)) {
                    throw new StackWalkException("frame " + depth + ": return address 0x" + Long.toHexString(returnAddress)
                            + " is inside JIT code (" + (frame.hasFunction() ? frame.functionName() + " in " : "")
                            + frame.objectName() + ") but is not a safepoint");
                }
                break;  // the first foreign frame: the end of this run of JIT frames
            }
            long sp = slot + 8;
            batch.reset(depth, sp, frame);
            long frameSize = frame.frameSize();
            long callerSlot;
            long callerRbp;
            if (frame.hasDynamicFrameSize()) {
                if (rbp < 0) {
                    throw new StackWalkException(batch.describe() + ": dynamic frame size and no known frame pointer");
                }
                callerSlot = rbp + 8;
                callerRbp = stack.word(rbp);
            } else if (frameSize < 0) {
                throw new StackWalkException(batch.describe() + ": no frame size in its stack map");
            } else {
                callerSlot = sp + frameSize;
                callerRbp = -1;
            }
            collectRoots(stack, depth, sp, rbp);
            visitor.visitFrame(batch, stack);
            if (callerSlot <= slot) {
                throw new StackWalkException(batch.describe() + ": caller's return address at 0x" + Long.toHexString(callerSlot)
                        + " is not above this frame's");
            }
            slot = callerSlot;
            rbp = callerRbp;
            depth++;
        }
        return depth;
    }

    private void collectRoots(ThreadStack stack, int depth, long sp, long rbp) throws StackWalkException {
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
            long baseSlot = slot(stack, base, sp, rbp, depth);
            long derivedSlot = slot(stack, derived, sp, rbp, depth);
            int b = batch.addBase(baseSlot);
            if (derivedSlot != baseSlot) {
                batch.addDerived(derivedSlot, b);
            }
        }
        for (int i = 0; i < frame.gcAllocaCount(); i++) {
            int alloca = frame.gcAlloca(i);
            // A gc-live alloca is Direct: reg + offset is the slot that holds the pointer.
            batch.addBase(address(frame.register(alloca), frame.offset(alloca), sp, rbp, depth));
        }
    }

    private boolean isConstant(int location) {
        LocationKind k = frame.kind(location);
        return k == LocationKind.CONSTANT || k == LocationKind.CONSTANT_INDEX;
    }

    /** The stack address that holds the value of a base or derived location. */
    private long slot(ThreadStack stack, int location, long sp, long rbp, int depth) throws StackWalkException {
        return switch (frame.kind(location)) {
            case INDIRECT -> address(frame.register(location), frame.offset(location), sp, rbp, depth);
            case REGISTER -> {
                long saved = depth == 0 ? stack.registers().slotOf(frame.register(location)) : -1;
                if (saved < 0) {
                    throw new StackWalkException(batch.describe() + ": a root in register R#" + frame.register(location)
                            + " and no saved value for it" + (depth == 0 ? " from the poll" : " (only the polling frame's registers are known)"));
                }
                yield saved;
            }
            default -> throw new StackWalkException(batch.describe() + ": a GC pointer in a " + frame.kind(location)
                    + " location");
        };
    }

    private long address(int register, int offset, long sp, long rbp, int depth) throws StackWalkException {
        if (register == RSP) {
            return sp + offset;
        }
        if (register == RBP && rbp >= 0) {
            return rbp + offset;
        }
        throw new StackWalkException(batch.describe() + ": a root addressed from R#" + register
                + (register == RBP ? " and the frame pointer is not known" : ", which the walker cannot recover"));
    }
}
