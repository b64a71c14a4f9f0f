package dev.safepointkit.events;

/**
 * A {@linkplain JitEventListener#required() required} listener failed while hearing of a load:
 * the object must not run. The dispatcher throws it after undoing what it can; the host turns it
 * into a failed load. The cause is what the listener threw.
 */
public final class JitListenerException extends RuntimeException {
    /** Serialized form: the message and the cause; the listener is not serialized. */
    private static final long serialVersionUID = 1L;
    private final transient JitEventListener listener;

    /**
     * Creates the exception; the message names the listener, the event and the cause's message.
     *
     * @param listener the required listener that threw
     * @param event the callback it threw in: {@code objectLoaded} or {@code functionEmitted}
     * @param cause what it threw
     */
    public JitListenerException(JitEventListener listener, String event, Throwable cause) {
        super("required listener " + listener + " failed in " + event + ": "
                + (cause.getMessage() == null ? cause.toString() : cause.getMessage()), cause);
        this.listener = listener;
    }

    /**
     * The listener that failed.
     *
     * @return the listener, or null in a deserialized copy (the field is transient)
     */
    public JitEventListener listener() {
        return listener;
    }
}
