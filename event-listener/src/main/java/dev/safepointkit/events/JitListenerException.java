package dev.safepointkit.events;

/**
 * A {@linkplain JitEventListener#required() required} listener failed while hearing of a load:
 * the object must not run. The dispatcher throws it after undoing what it can; the host turns it
 * into a failed load. The cause is what the listener threw.
 */
public final class JitListenerException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient JitEventListener listener;

    public JitListenerException(JitEventListener listener, String event, Throwable cause) {
        super("required listener " + listener + " failed in " + event + ": "
                + (cause.getMessage() == null ? cause.toString() : cause.getMessage()), cause);
        this.listener = listener;
    }

    /** The listener that failed. */
    public JitEventListener listener() {
        return listener;
    }
}
