package dev.safepointkit.patch;

/**
 * What one pass over a function's call sites did.
 *
 * @param patched sites rewritten now, each with one atomic store
 * @param deferred sites whose displacement is not 4-byte aligned: rewritten at the next
 *     safepoint ({@link CodePatcher#safepoint}), until then they keep their old target
 * @param unchanged sites that already had the wanted target
 * @param outOfRange sites the target is too far from for a rel32: they stay on the stub
 * @param stayOnStub unaligned sites of a patcher without a coordinator: they keep calling the stub
 * @param foreign sites that refer to the function but were not bound to its stub (its own
 *     recursive calls, for one): left alone
 */
public record RelinkReport(int patched, int deferred, int unchanged, int outOfRange, int stayOnStub, int foreign) {

    RelinkReport plus(RelinkReport o) {
        return new RelinkReport(patched + o.patched, deferred + o.deferred, unchanged + o.unchanged,
                outOfRange + o.outOfRange, stayOnStub + o.stayOnStub, foreign + o.foreign);
    }
}
