package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Reading where a stub leads ({@link Stub#target}) while its patcher closes and frees the stub
 * blocks: every read gives the slot's value or fails with {@link IllegalStateException}, never
 * touches unmapped memory (which would crash the JVM), and every read after the free fails.
 */
class StubReadRacingFreeTest {
    private static final int ROUNDS = 300;

    @Test
    void aStubReadRacingTheFreeOfItsBlockGetsTheTargetOrARefusalNeverACrash() throws Throwable {
        long reads = 0;
        long refused = 0;
        for (int round = 0; round < ROUNDS; round++) {
            JitHost host = new JitHost();
            CodePatcher patcher = new CodePatcher(host);
            Stub stub = patcher.declare("f", name -> {
                throw new AssertionError("never called");
            });
            long lazyEntry = stub.target();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            AtomicLong done = new AtomicLong();
            AtomicLong refusals = new AtomicLong();
            CountDownLatch reading = new CountDownLatch(1);
            Thread reader = Thread.ofPlatform().start(() -> {
                long n = 0;
                try {
                    while (true) {
                        long t;
                        try {
                            t = stub.target();
                        } catch (IllegalStateException freed) {
                            refusals.incrementAndGet();
                            break;
                        }
                        if (t != lazyEntry) {
                            throw new AssertionError("read 0x" + Long.toHexString(t) + ", the slot holds 0x"
                                    + Long.toHexString(lazyEntry));
                        }
                        if (++n == 64) {
                            reading.countDown();
                        }
                    }
                } catch (Throwable t) {
                    failure.set(t);
                } finally {
                    reading.countDown();
                    done.set(n);
                }
            });
            reading.await();
            patcher.close();   // the host has no object that calls f: the block is freed now
            reader.join();
            host.close();
            if (failure.get() != null) {
                throw failure.get();
            }
            assertEquals(1, refusals.get(), "round " + round + ": the reader ends on the free's refusal");
            reads += done.get();
            refused += refusals.get();
        }
        assertEquals(ROUNDS, refused);
        assertTrue(reads > ROUNDS * 64L, "reads raced the frees: " + reads);
    }
}
