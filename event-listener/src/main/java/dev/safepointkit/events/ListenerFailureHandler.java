package dev.safepointkit.events;

/** Told when a listener throws; the dispatcher goes on with the other listeners regardless. */
@FunctionalInterface
public interface ListenerFailureHandler {

    /**
     * Told that {@code listener} threw {@code failure} and was passed over. Called on the thread
     * that was dispatching, possibly on several at once: implementations must be thread safe.
     * Throwing from here ends the dispatch with that exception.
     *
     * @param listener the listener that threw
     * @param event the callback that threw: {@code objectLoaded}, {@code functionEmitted} or {@code objectFreeing}
     * @param failure what it threw; never a {@link VirtualMachineError}, which the dispatcher rethrows
     */
    void listenerFailed(JitEventListener listener, String event, Throwable failure);

    /**
     * Logs the failure as a warning through {@link System.Logger}.
     *
     * @return a handler that logs to the logger named after {@link JitEventDispatcher}, with the
     *     failure's stack trace
     */
    static ListenerFailureHandler logging() {
        System.Logger log = System.getLogger(JitEventDispatcher.class.getName());
        return (listener, event, failure) -> log.log(System.Logger.Level.WARNING,
                "JIT event listener " + listener + " failed in " + event, failure);
    }
}
