package dev.safepointkit.host;

/** libLLVM 19 could not be found or opened; the message says how to install it. */
public final class LlvmUnavailableException extends Exception {
    private static final long serialVersionUID = 1L;

    /**
     * The exception {@link LlvmCompiler#open()} and {@link LlvmCompiler#open(java.nio.file.Path)} throw.
     *
     * @param message each place tried, why it failed, and how to install libLLVM 19
     * @param cause the last failure to open or use a library, or null
     */
    public LlvmUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
