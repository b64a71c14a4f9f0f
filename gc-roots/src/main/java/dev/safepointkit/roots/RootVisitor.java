package dev.safepointkit.roots;

/**
 * Receives the roots of a walk, one frame's {@link RootBatch} at a time: one call per frame, in
 * the manner of a collector's root work packet, not one call per root.
 */
@FunctionalInterface
public interface RootVisitor {

    /**
     * Takes the roots of one frame. Called on the walking thread, frames innermost first; the
     * batch is only valid during this call, since the walker reuses it for the next frame.
     *
     * @param batch the frame's root slots, each once
     * @param stack the stack being walked, whose thread is stopped: the slots lie in its memory
     * @throws StackWalkException to end the walk; the walker passes it on to its caller
     */
    void visitFrame(RootBatch batch, ThreadStack stack) throws StackWalkException;
}
