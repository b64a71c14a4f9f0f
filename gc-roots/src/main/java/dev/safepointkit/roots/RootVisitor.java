package dev.safepointkit.roots;

/**
 * Receives the roots of a walk, one frame's {@link RootBatch} at a time: one call per frame, in
 * the manner of a collector's root work packet, not one call per root.
 */
@FunctionalInterface
public interface RootVisitor {

    /** The batch is only valid during this call; the walker reuses it for the next frame. */
    void visitFrame(RootBatch batch, ThreadStack stack) throws StackWalkException;
}
