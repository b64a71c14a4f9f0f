package dev.safepointkit.events;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
}
