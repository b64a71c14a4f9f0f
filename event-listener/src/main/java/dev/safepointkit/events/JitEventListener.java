package dev.safepointkit.events;

import java.util.Optional;

/**
 * Hears what a JIT host loads and unloads. Every method has an empty default, so a listener
 * overrides only what it needs.
 *
 * <p>For one object the host calls, on the thread that loads it: {@link #objectLoaded} once,
 * after the code is in place and executable but before any of it can have been called through
 * the host; then {@link #functionEmitted} once per function, in address order. On unload,
 * {@link #objectFreeing} is called before the memory is unmapped, so a listener may still read
 * it. Different objects may be loaded from different threads at once: a listener that keeps
 * state must be thread safe. A listener must not load or unload objects from inside a callback.
 *
 * <p>A listener is either an observer (perf map, jitdump: the default) or {@link #required()}:
 * one whose bookkeeping the object is unsafe to run without (a safepoint registry, a code
 * patcher's). An observer's failure is reported and the load goes on. A required listener's
 * failure in {@link #objectLoaded} or {@link #functionEmitted} fails the load: every listener
 * that heard {@link #objectLoaded} for the object then hears {@link #objectFreeing}, and the host
 * unmaps it. So {@link #objectFreeing} may follow a load whose {@link #functionEmitted} calls
 * stopped part-way. A listener that throws in {@link #objectLoaded} is not told: it must keep
 * nothing of an object it refused. The host publishes an object only once every listener has
 * heard of all of it, so while a listener runs no other thread can call the object's code.
 */
public interface JitEventListener {

    /**
     * Whether a failure of this listener must fail the load (see the class comment); false by default.
     * Asked again after each failure, so the answer should not change.
     *
     * @return true for a listener the object is unsafe to run without
     */
    default boolean required() {
        return false;
    }

    /**
     * {@code object} is mapped, linked and executable. Called once per object, on the loading
     * thread, before any {@link #functionEmitted} for it.
     *
     * @param object the object; its memory is valid until {@link #objectFreeing} for it returns
     */
    default void objectLoaded(LoadedObject object) {
    }

    /**
     * A function of an object that was just loaded, with its labels and stack map records. Called
     * on the loading thread, after {@link #objectLoaded} for its object, in address order.
     *
     * @param function the function; {@link EmittedFunction#object()} is the object it belongs to
     */
    default void functionEmitted(EmittedFunction function) {
    }

    /**
     * Asked before a non-forced unload of {@code object}, on the unloading thread, inside the
     * host's lock, before {@link #objectFreeing}: why the object may not be unmapped yet (code or
     * data this listener keeps still leads into it, say a code patcher's stub or relinked call),
     * or empty if it may. A reason refuses the unload, and the host's exception gives it. Asking
     * must change nothing: another listener may still refuse. A forced unload does not ask.
     *
     * @param object an object this listener heard of in {@link #objectLoaded}
     * @return the reason to refuse, naming what still leads into the object; empty by default
     */
    default Optional<String> unloadRefusal(LoadedObject object) {
        return Optional.empty();
    }

    /**
     * {@code object} is about to be unmapped; its addresses are still valid during this call.
     * Also called when a load fails after this listener heard {@link #objectLoaded}. A
     * {@link JitEventDispatcher} reports what this method throws and goes on: the memory goes
     * away regardless.
     *
     * @param object the object this listener heard of in {@link #objectLoaded}
     */
    default void objectFreeing(LoadedObject object) {
    }
}
