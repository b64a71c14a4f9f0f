package dev.safepointkit.registry;

/** A registration the registry refuses: overlapping code, a duplicate key, a malformed stack map. */
public final class RegistryException extends Exception {
    private static final long serialVersionUID = 1L;

    public RegistryException(String message) {
        super(message);
    }

    public RegistryException(String message, Throwable cause) {
        super(message, cause);
    }
}
