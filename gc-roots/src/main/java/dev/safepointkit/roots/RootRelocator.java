package dev.safepointkit.roots;

/**
 * Rewrites a frame's roots after objects moved.
 *
 * <p>Order matters, and is why this is a class of its own: every derived pointer's offset from
 * its base is computed from the old values before any base slot is written (HotSpot's rule; JLLVM
 * and LLILC shipped bugs where a derived pointer was rebased on an already-moved base). Each slot
 * is written once: the batch holds no duplicates.
 *
 * <p>Not thread safe: one relocator per collecting thread (it keeps a scratch array).
 */
public final class RootRelocator implements RootVisitor {
    private final ObjectMover mover;
    private long[] offsets = new long[16];
    private long relocatedSlots;

    /**
     * A relocator that asks {@code mover} where each base object went.
     *
     * @param mover the collector's forwarding; asked once per non-null base slot of each frame
     */
    public RootRelocator(ObjectMover mover) {
        this.mover = mover;
    }

    @Override
    public void visitFrame(RootBatch batch, ThreadStack stack) throws StackWalkException {
        int derived = batch.derivedCount();
        if (offsets.length < derived) {
            offsets = new long[Math.max(derived, offsets.length * 2)];
        }
        // 1. Derived offsets from the old values, before any base moves.
        for (int i = 0; i < derived; i++) {
            long oldBase = stack.word(batch.baseSlot(batch.derivedBaseIndex(i)));
            offsets[i] = stack.word(batch.derivedSlot(i)) - oldBase;
        }
        // 2. Bases.
        for (int i = 0; i < batch.baseCount(); i++) {
            long slot = batch.baseSlot(i);
            long old = stack.word(slot);
            if (old != 0) {
                stack.write(slot, mover.forward(old));
            }
        }
        // 3. Derived pointers, from the new bases.
        for (int i = 0; i < derived; i++) {
            long newBase = stack.word(batch.baseSlot(batch.derivedBaseIndex(i)));
            if (newBase != 0) {
                stack.write(batch.derivedSlot(i), newBase + offsets[i]);
            }
        }
        relocatedSlots += batch.baseCount() + derived;
    }

    /**
     * Slots rewritten (or checked, for null) so far.
     *
     * @return base plus derived slots of every frame visited since this relocator was made
     */
    public long relocatedSlots() {
        return relocatedSlots;
    }
}
