package dev.safepointkit.events;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Fans each event out to every registered listener, in registration order.
 *
 * <p>Thread safety: {@link #add} and {@link #remove} may be called from any thread at any time,
 * also during a dispatch; a dispatch sees the listeners registered when it started (a snapshot),
 * never a half-updated list. An observer that throws (an exception or an error other than a
 * {@link VirtualMachineError}) is reported to the failure handler and the dispatch continues with
 * the next listener; the host never sees the failure. A {@linkplain JitEventListener#required()
 * required} listener that throws in {@link #objectLoaded} or {@link #functionEmitted} ends the
 * dispatch with a {@link JitListenerException}; in {@link #objectLoaded}, the listeners that had
 * already heard it first hear {@link #objectFreeing}, newest first. Failures in
 * {@link #objectFreeing} are always reported and passed over: the memory goes away regardless.
 * {@link #unloadRefusal} gives the first listener's reason; a required listener that throws there
 * refuses the unload.
 * A dispatcher added to another is required when any of its listeners is.
 */
public final class JitEventDispatcher implements JitEventListener {
    private final List<JitEventListener> listeners = new CopyOnWriteArrayList<>();
    private final ListenerFailureHandler failures;

    /** A dispatcher with no listeners that logs observers' failures ({@link ListenerFailureHandler#logging()}). */
    public JitEventDispatcher() {
        this(ListenerFailureHandler.logging());
    }

    /**
     * A dispatcher with no listeners.
     *
     * @param failures told of every failure the dispatch passes over; called on the dispatching
     *     thread, possibly from several threads at once. If it throws, the dispatch ends with its
     *     exception; in {@code objectLoaded}, the listeners that had heard it first hear
     *     {@code objectFreeing}
     * @throws NullPointerException if {@code failures} is null
     */
    public JitEventDispatcher(ListenerFailureHandler failures) {
        this.failures = Objects.requireNonNull(failures);
    }

    /**
     * Registers {@code listener} after those already registered; dispatches that have already
     * started do not see it. Adding the same listener twice makes it hear every event twice.
     *
     * @param listener the listener
     * @throws NullPointerException if {@code listener} is null
     */
    public void add(JitEventListener listener) {
        listeners.add(Objects.requireNonNull(listener));
    }

    /**
     * Removes one registration of {@code listener}, the earliest; dispatches that have already
     * started still call it.
     *
     * @param listener the listener, compared with {@code equals}
     * @return whether there was a registration to remove
     */
    public boolean remove(JitEventListener listener) {
        return listeners.remove(listener);
    }

    /**
     * The registered listeners, in registration order.
     *
     * @return an unmodifiable snapshot, not updated by later {@link #add} or {@link #remove}
     */
    public List<JitEventListener> listeners() {
        return List.copyOf(listeners);
    }

    @Override
    public boolean required() {
        for (JitEventListener l : listeners) {
            if (l.required()) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void objectLoaded(LoadedObject object) {
        List<JitEventListener> snapshot = List.copyOf(listeners);
        for (int i = 0; i < snapshot.size(); i++) {
            JitEventListener l = snapshot.get(i);
            try {
                l.objectLoaded(object);
            } catch (Throwable failure) {
                if (!(failure instanceof VirtualMachineError) && !l.required()) {
                    try {
                        failures.listenerFailed(l, "objectLoaded", failure);
                        continue;
                    } catch (Throwable handlerFailure) {
                        forget(snapshot, i, object);
                        throw handlerFailure;
                    }
                }
                // Those that heard of the object forget it again before the host unmaps it.
                forget(snapshot, i, object);
                if (failure instanceof VirtualMachineError || failure instanceof JitListenerException) {
                    throw failure;
                }
                throw new JitListenerException(l, "objectLoaded", failure);
            }
        }
    }

    /** objectFreeing to the first {@code heard} listeners of {@code snapshot}, newest first. */
    private void forget(List<JitEventListener> snapshot, int heard, LoadedObject object) {
        for (int j = heard - 1; j >= 0; j--) {
            freeing(snapshot.get(j), object);
        }
    }

    @Override
    public void functionEmitted(EmittedFunction function) {
        for (JitEventListener l : listeners) {
            try {
                l.functionEmitted(function);
            } catch (VirtualMachineError fatal) {
                throw fatal;
            } catch (Throwable failure) {
                if (l.required()) {
                    throw failure instanceof JitListenerException nested ? nested
                            : new JitListenerException(l, "functionEmitted", failure);
                }
                failures.listenerFailed(l, "functionEmitted", failure);
            }
        }
    }

    /**
     * The first listener's reason to refuse the unload, in registration order. A required
     * listener that fails to answer refuses (fail closed: it may be the one whose code still
     * leads into the object); an observer's failure is reported and passed over.
     */
    @Override
    public Optional<String> unloadRefusal(LoadedObject object) {
        for (JitEventListener l : listeners) {
            try {
                Optional<String> reason = l.unloadRefusal(object);
                if (reason.isPresent()) {
                    return Optional.of(l + ": " + reason.get());
                }
            } catch (VirtualMachineError fatal) {
                throw fatal;
            } catch (Throwable failure) {
                if (l.required()) {
                    return Optional.of(l + " could not say whether the object is still in use: " + failure);
                }
                failures.listenerFailed(l, "unloadRefusal", failure);
            }
        }
        return Optional.empty();
    }

    @Override
    public void objectFreeing(LoadedObject object) {
        for (JitEventListener l : listeners) {
            freeing(l, object);
        }
    }

    private void freeing(JitEventListener l, LoadedObject object) {
        try {
            l.objectFreeing(object);
        } catch (VirtualMachineError fatal) {
            throw fatal;
        } catch (Throwable failure) {
            failures.listenerFailed(l, "objectFreeing", failure);
        }
    }
}
