package dev.safepointkit.patch;

/** A patch that was refused; nothing was written. */
public class PatchException extends Exception {
    public PatchException(String message) {
        super(message);
    }

    public PatchException(String message, Throwable cause) {
        super(message, cause);
    }
}
