package dev.safepointkit.registry;

/** A registration the registry refuses: overlapping code, a duplicate key, a malformed stack map. */
public final class RegistryException extends Exception {
    /** Serialized form: the message and the cause. */
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what was refused and why, starting with the object's name
     */
    public RegistryException(String message) {
        super(message);
    }

    /**
     * Creates the exception for a refusal caused by another failure.
     *
     * @param message what was refused and why, starting with the object's name
     * @param cause the failure, for example a {@code StackMapFormatException}
     */
    public RegistryException(String message, Throwable cause) {
        super(message, cause);
    }
}
