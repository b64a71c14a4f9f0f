package dev.safepointkit.roots;

/** What a collector does while every mutator is stopped (see {@link SafepointCoordinator#stopTheWorld}). */
@FunctionalInterface
public interface WorldAction {

    /**
     * Does the collector's work. Runs on the thread that asked for the stop (or, in
     * {@link SafepointCoordinator#collectAtEveryPoll} mode, the polling thread), with the
     * coordinator's lock held. Calls that would wait for the stop to end (a new stop, entering or
     * returning into JIT code, detaching) are refused with {@link IllegalStateException}.
     *
     * @param world every stopped mutator and its stack, valid only during this call
     * @throws StackWalkException to fail the stop; the coordinator rethrows it after the mutators
     *     resume
     */
    void run(StoppedWorld world) throws StackWalkException;
}
