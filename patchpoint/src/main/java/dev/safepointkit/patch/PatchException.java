package dev.safepointkit.patch;

/** A patch that was refused; nothing was written. */
public class PatchException extends Exception {
    /**
     * A refusal.
     *
     * @param message what was refused, where and why
     */
    public PatchException(String message) {
        super(message);
    }

    /**
     * A refusal caused by another failure.
     *
     * @param message what was refused, where and why
     * @param cause the failure behind it (a compiler's exception, an unload that won a race)
     */
    public PatchException(String message, Throwable cause) {
        super(message, cause);
    }
}
