package dev.safepointkit.events;

/** Told when a listener throws; the dispatcher goes on with the other listeners regardless. */
@FunctionalInterface
public interface ListenerFailureHandler {

    /**
     * @param event the callback that threw: {@code objectLoaded}, {@code functionEmitted} or {@code objectFreeing}
     */
    void listenerFailed(JitEventListener listener, String event, Throwable failure);

    /** Logs the failure as a warning through {@link System.Logger}. */
    static ListenerFailureHandler logging() {
        System.Logger log = System.getLogger(JitEventDispatcher.class.getName());
        return (listener, event, failure) -> log.log(System.Logger.Level.WARNING,
                "JIT event listener " + listener + " failed in " + event, failure);
    }
}
