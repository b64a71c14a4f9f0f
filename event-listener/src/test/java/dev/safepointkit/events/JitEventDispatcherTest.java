package dev.safepointkit.events;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The dispatcher's contract: snapshots under concurrent change, failures isolated and reported. */
class JitEventDispatcherTest {
    private static final LoadedObject OBJECT = new LoadedObject(1, "test.o", List.of(), List.of(), Optional.empty(),
            Optional.empty());

    static final class Counter implements JitEventListener {
        final AtomicLong loaded = new AtomicLong();

        @Override
        public void objectLoaded(LoadedObject object) {
            loaded.incrementAndGet();
        }
    }

    @Test
    void listenersAddedAndRemovedDuringDispatchNeverBreakIt() throws Exception {
        List<Throwable> failures = new ArrayList<>();
        JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, t) -> {
            synchronized (failures) {
                failures.add(t);
            }
        });
        Counter permanent = new Counter();
        dispatcher.add(permanent);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> churnFailure = new AtomicReference<>();
        CountDownLatch started = new CountDownLatch(1);
        Thread churn = new Thread(() -> {
            started.countDown();
            try {
                while (!stop.get()) {
                    Counter c = new Counter();
                    dispatcher.add(c);
                    assertTrue(dispatcher.remove(c));
                }
            } catch (Throwable t) {
                churnFailure.set(t);
            }
        });
        churn.start();
        started.await();
        int rounds = 200_000;
        for (int i = 0; i < rounds; i++) {
            dispatcher.objectLoaded(OBJECT);
        }
        stop.set(true);
        churn.join();
        assertEquals(null, churnFailure.get());
        assertTrue(failures.isEmpty(), () -> failures.toString());
        assertEquals(rounds, permanent.loaded.get(), "a listener registered throughout hears every event once");
        assertEquals(List.of(permanent), dispatcher.listeners());
    }

    @Test
    void aThrowingListenerIsReportedAndTheNextStillRuns() {
        List<String> reported = new ArrayList<>();
        JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, t) -> reported.add(event + ": " + t.getMessage()));
        dispatcher.add(new JitEventListener() {
            @Override
            public void objectFreeing(LoadedObject object) {
                throw new IllegalArgumentException("bad listener");
            }
        });
        Counter after = new Counter();
        dispatcher.add(after);
        dispatcher.objectFreeing(OBJECT);
        dispatcher.objectLoaded(OBJECT);
        assertEquals(List.of("objectFreeing: bad listener"), reported);
        assertEquals(1, after.loaded.get());
    }

    @Test
    void virtualMachineErrorsAreNotSwallowed() {
        JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, t) -> {
            throw new AssertionError("must not be reported: " + t);
        });
        dispatcher.add(new JitEventListener() {
            @Override
            public void objectLoaded(LoadedObject object) {
                throw new StackOverflowError("deep");
            }
        });
        assertThrows(StackOverflowError.class, () -> dispatcher.objectLoaded(OBJECT));
    }

    /** Records "NAME:event" for every callback into a shared log; throws in objectLoaded when told. */
    private static JitEventListener recording(String name, boolean required, List<String> log, String throwIn) {
        return new JitEventListener() {
            @Override
            public boolean required() {
                return required;
            }

            @Override
            public void objectLoaded(LoadedObject object) {
                log.add(name + ":loaded");
                if (throwIn.equals("objectLoaded")) {
                    throw new IllegalStateException(name + " refuses");
                }
            }

            @Override
            public void functionEmitted(EmittedFunction function) {
                log.add(name + ":emitted");
                if (throwIn.equals("functionEmitted")) {
                    throw new IllegalStateException(name + " refuses");
                }
            }

            @Override
            public void objectFreeing(LoadedObject object) {
                log.add(name + ":freeing");
            }

            @Override
            public String toString() {
                return name;
            }
        };
    }

    @Test
    void aRequiredListenerFailingInObjectLoadedUndoesThoseBeforeItNewestFirstAndThrows() {
        List<String> log = new ArrayList<>();
        List<String> reported = new ArrayList<>();
        JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, t) -> reported.add(l + " " + event));
        dispatcher.add(recording("a", false, log, ""));
        dispatcher.add(recording("b", true, log, ""));
        dispatcher.add(recording("c", true, log, "objectLoaded"));
        dispatcher.add(recording("d", false, log, ""));
        JitListenerException e = assertThrows(JitListenerException.class, () -> dispatcher.objectLoaded(OBJECT));
        assertEquals("required listener c failed in objectLoaded: c refuses", e.getMessage());
        assertEquals("c", e.listener().toString());
        assertEquals(List.of("a:loaded", "b:loaded", "c:loaded", "b:freeing", "a:freeing"), log, "d never heard of it");
        assertEquals(List.of(), reported);
    }

    @Test
    void anObserverFailingIsReportedAndTheLoadGoesOn() {
        List<String> log = new ArrayList<>();
        List<String> reported = new ArrayList<>();
        JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, t) -> reported.add(l + " " + event));
        dispatcher.add(recording("perf", false, log, "objectLoaded"));
        dispatcher.add(recording("registry", true, log, ""));
        dispatcher.objectLoaded(OBJECT);
        assertEquals(List.of("perf:loaded", "registry:loaded"), log);
        assertEquals(List.of("perf objectLoaded"), reported);
    }

    @Test
    void aRequiredListenerFailingInFunctionEmittedThrowsAndStopsTheDispatch() {
        List<String> log = new ArrayList<>();
        JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, t) -> {
            throw new AssertionError("a required failure is thrown, not reported: " + t);
        });
        dispatcher.add(recording("registry", true, log, "functionEmitted"));
        dispatcher.add(recording("perf", false, log, ""));
        EmittedFunction f = new EmittedFunction("f", 0x1000, 1, OBJECT, java.util.Map.of(), List.of(),
                java.lang.foreign.MemorySegment.ofArray(new byte[1]));
        JitListenerException e = assertThrows(JitListenerException.class, () -> dispatcher.functionEmitted(f));
        assertEquals("required listener registry failed in functionEmitted: registry refuses", e.getMessage());
        assertEquals(List.of("registry:emitted"), log);
    }

    @Test
    void aDispatcherIsRequiredWhenOneOfItsListenersIsAndPassesTheFailureOnAsItIs() {
        List<String> log = new ArrayList<>();
        JitEventDispatcher inner = new JitEventDispatcher();
        inner.add(recording("perf", false, log, ""));
        JitEventDispatcher outer = new JitEventDispatcher();
        outer.add(recording("first", false, log, ""));
        outer.add(inner);
        assertEquals(false, inner.required());
        inner.add(recording("registry", true, log, "objectLoaded"));
        assertEquals(true, inner.required());
        assertEquals(true, outer.required());
        JitListenerException e = assertThrows(JitListenerException.class, () -> outer.objectLoaded(OBJECT));
        assertEquals("registry", e.listener().toString());
        assertEquals(List.of("first:loaded", "perf:loaded", "registry:loaded", "perf:freeing", "first:freeing"), log);
    }

    /** Answers unloadRefusal with {@code reason} (empty: may unload), or throws when {@code reason} is null. */
    private static JitEventListener answering(String name, boolean required, List<String> asked, String reason) {
        return new JitEventListener() {
            @Override
            public boolean required() {
                return required;
            }

            @Override
            public Optional<String> unloadRefusal(LoadedObject object) {
                asked.add(name);
                if (reason == null) {
                    throw new IllegalStateException(name + " lost track");
                }
                return reason.isEmpty() ? Optional.empty() : Optional.of(reason);
            }

            @Override
            public String toString() {
                return name;
            }
        };
    }

    @Test
    void unloadRefusalGivesTheFirstReasonInRegistrationOrderAndReportsAnObserverThatCannotAnswer() {
        List<String> asked = new ArrayList<>();
        List<String> reported = new ArrayList<>();
        JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, t) -> reported.add(l + " " + event + ": "
                + t.getMessage()));
        dispatcher.add(answering("perf", false, asked, null));
        dispatcher.add(answering("registry", true, asked, ""));
        dispatcher.add(answering("patcher", true, asked, "stub of f leads into it"));
        dispatcher.add(answering("other", true, asked, "a second reason"));
        assertEquals(Optional.of("patcher: stub of f leads into it"), dispatcher.unloadRefusal(OBJECT),
                "the first listener that refuses gives the reason");
        assertEquals(List.of("perf", "registry", "patcher"), asked, "asked in registration order, up to the first refusal");
        assertEquals(List.of("perf unloadRefusal: perf lost track"), reported, "the observer's failure is reported");

        JitEventDispatcher none = new JitEventDispatcher((l, event, t) -> reported.add(l + " " + event));
        none.add(answering("registry", true, asked, ""));
        assertEquals(Optional.empty(), none.unloadRefusal(OBJECT), "no reason: the unload may go on");
    }

    @Test
    void aFailureHandlerThatThrowsInObjectLoadedEndsTheDispatchAfterThoseThatHeardItForgetIt() {
        List<String> log = new ArrayList<>();
        IllegalStateException handlerFailure = new IllegalStateException("handler gives up");
        JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, t) -> {
            throw handlerFailure;
        });
        dispatcher.add(recording("a", false, log, ""));
        dispatcher.add(recording("b", true, log, ""));
        dispatcher.add(recording("perf", false, log, "objectLoaded"));
        dispatcher.add(recording("d", false, log, ""));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> dispatcher.objectLoaded(OBJECT));
        assertSame(handlerFailure, e, "the handler's exception is passed on as it is");
        assertEquals(List.of("a:loaded", "b:loaded", "perf:loaded", "b:freeing", "a:freeing"), log,
                "those that heard of the object forget it, newest first; d never heard of it");
    }

    @Test
    void aRequiredListenerFailingInObjectFreeingIsReportedAndTheOthersStillHearIt() {
        List<String> log = new ArrayList<>();
        List<String> reported = new ArrayList<>();
        JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, t) -> reported.add(l + " " + event));
        dispatcher.add(new JitEventListener() {
            @Override
            public boolean required() {
                return true;
            }

            @Override
            public void objectFreeing(LoadedObject object) {
                throw new IllegalStateException("registry cannot forget");
            }

            @Override
            public String toString() {
                return "registry";
            }
        });
        dispatcher.add(recording("perf", false, log, ""));
        dispatcher.objectFreeing(OBJECT);
        assertEquals(List.of("perf:freeing"), log, "the memory goes away regardless: every listener hears it");
        assertEquals(List.of("registry objectFreeing"), reported);
    }

    @Test
    void aListenerAddedTwiceHearsTwiceAndRemoveTakesTheEarliestRegistration() {
        List<String> log = new ArrayList<>();
        JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, t) -> {
            throw new AssertionError("no failure expected: " + t);
        });
        JitEventListener x = recording("x", false, log, "");
        JitEventListener y = recording("y", false, log, "");
        dispatcher.add(x);
        dispatcher.add(y);
        dispatcher.add(x);
        dispatcher.objectLoaded(OBJECT);
        assertEquals(List.of("x:loaded", "y:loaded", "x:loaded"), log);
        assertTrue(dispatcher.remove(x));
        assertEquals(List.of(y, x), dispatcher.listeners(), "only the earliest registration is removed");
        assertTrue(dispatcher.remove(x));
        assertFalse(dispatcher.remove(x), "nothing left to remove");
        assertEquals(List.of(y), dispatcher.listeners());
    }
}
