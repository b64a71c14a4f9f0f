package dev.safepointkit.host;

/** libLLVM 19 could not be found or opened; the message says how to install it. */
public final class LlvmUnavailableException extends Exception {
    private static final long serialVersionUID = 1L;

    public LlvmUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
