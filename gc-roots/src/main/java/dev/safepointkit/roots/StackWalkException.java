package dev.safepointkit.roots;

/**
 * A stack that cannot be walked precisely: a return address in JIT code with no safepoint, a
 * frame that leaves the stack's bounds, a dynamic frame with no frame pointer, a register root
 * with no saved value. The walk stops: it never guesses and never skips roots.
 */
public class StackWalkException extends Exception {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what could not be walked, naming the frame (depth, function, object, return
     *     address) or the run
     */
    public StackWalkException(String message) {
        super(message);
    }

    /**
     * Creates the exception with its cause.
     *
     * @param message what could not be walked, naming the frame or the run
     * @param cause what failed underneath (a cross-check unwinder's own failure)
     */
    public StackWalkException(String message, Throwable cause) {
        super(message, cause);
    }
}
