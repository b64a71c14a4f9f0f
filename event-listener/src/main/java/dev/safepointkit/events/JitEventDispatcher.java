package dev.safepointkit.events;

import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Fans each event out to every registered listener, in registration order.
 *
 * <p>Thread safety: {@link #add} and {@link #remove} may be called from any thread at any time,
 * also during a dispatch; a dispatch sees the listeners registered when it started (a snapshot),
 * never a half-updated list. A listener that throws (an exception or an error other than a
 * {@link VirtualMachineError}) is reported to the failure handler and the dispatch continues with
 * the next listener; the host never sees the failure.
 */
public final class JitEventDispatcher implements JitEventListener {
    private final List<JitEventListener> listeners = new CopyOnWriteArrayList<>();
    private final ListenerFailureHandler failures;

    public JitEventDispatcher() {
        this(ListenerFailureHandler.logging());
    }

    public JitEventDispatcher(ListenerFailureHandler failures) {
        this.failures = Objects.requireNonNull(failures);
    }

    public void add(JitEventListener listener) {
        listeners.add(Objects.requireNonNull(listener));
    }

    /** Removes one registration of {@code listener}; returns whether there was one. */
    public boolean remove(JitEventListener listener) {
        return listeners.remove(listener);
    }

    public List<JitEventListener> listeners() {
        return List.copyOf(listeners);
    }

    @Override
    public void objectLoaded(LoadedObject object) {
        dispatch("objectLoaded", l -> l.objectLoaded(object));
    }

    @Override
    public void functionEmitted(EmittedFunction function) {
        dispatch("functionEmitted", l -> l.functionEmitted(function));
    }

    @Override
    public void objectFreeing(LoadedObject object) {
        dispatch("objectFreeing", l -> l.objectFreeing(object));
    }

    private void dispatch(String event, java.util.function.Consumer<JitEventListener> call) {
        for (JitEventListener l : listeners) {
            try {
                call.accept(l);
            } catch (VirtualMachineError fatal) {
                throw fatal;
            } catch (Throwable failure) {
                failures.listenerFailed(l, event, failure);
            }
        }
    }
}
