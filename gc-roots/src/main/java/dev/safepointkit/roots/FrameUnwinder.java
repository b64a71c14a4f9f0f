package dev.safepointkit.roots;

/**
 * A second opinion on a stopped stack's frames: what another unwinder (the process's own,
 * jit-host's {@code ProcessUnwinder}, through each frame's {@code .eh_frame}) finds from a frame
 * outward. A {@link JitStackWalker} made with one compares every run's frame list against it.
 *
 * <p>Called on the walking thread while the walked thread is stopped; an implementation used by
 * several walkers must be thread safe.
 */
@FunctionalInterface
public interface FrameUnwinder {
    /**
     * The frames found from the frame whose return address is at {@code returnAddressSlot},
     * outward, until the unwinder knows no more or {@code out} is full.
     *
     * @param returnAddressSlot the absolute address of the slot holding the return address into
     *     the first frame
     * @param calleeSaved that frame's RBX, RBP, R12-R15 at its call, in this order; only those
     *     {@code known} says are meaningful
     * @param known bit {@code i} set when {@code calleeSaved[i]} is known
     * @param out receives, for frame {@code k} (0: the one the slot returns into), the return
     *     address into it at {@code out[2k]} and its SP at its call at {@code out[2k + 1]}
     * @return the number of frames written, at most {@code out.length / 2}
     */
    int frames(long returnAddressSlot, long[] calleeSaved, int known, long[] out);
}
