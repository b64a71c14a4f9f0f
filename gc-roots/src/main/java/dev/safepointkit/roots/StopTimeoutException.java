package dev.safepointkit.roots;

/**
 * A stop whose mutators did not all reach a poll within the coordinator's timeout: the message
 * names each mutator still running JIT code. The stop is abandoned and the others resume; no
 * action ran.
 */
public final class StopTimeoutException extends StackWalkException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message how long the stop waited and which mutators did not reach a poll
     */
    public StopTimeoutException(String message) {
        super(message);
    }
}
