package dev.safepointkit.roots;

/** What a collector does while every mutator is stopped (see {@link SafepointCoordinator#stopTheWorld}). */
@FunctionalInterface
public interface WorldAction {

    void run(StoppedWorld world) throws StackWalkException;
}
