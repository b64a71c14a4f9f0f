package dev.safepointkit.registry;

import static dev.safepointkit.registry.SafepointRegistryTest.section;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Lookups and locates allocate nothing, as {@link SafepointRegistry} says: measured by the JVM's
 * per-thread allocation counter around many of them, hits, misses and code without a safepoint,
 * over objects registered in several slots; less than a byte per call cold, not a byte warm.
 */
class LookupAllocationTest {
    private static final int OBJECTS = 64;
    private static final int CALLS = 100_000;

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private static long allocatedBytes() {
        return THREADS.getCurrentThreadAllocatedBytes();
    }

    /** Each object: code at 0x100000 * (o + 1), 0x100 bytes, safepoints at +0x10 and +0x30 of function f. */
    private static SafepointRegistry registry() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        for (int o = 0; o < OBJECTS; o++) {
            long start = 0x100000L * (o + 1);
            registry.register(o, "o" + o, start, 0x100, section(start, 32, 0x10, 0x30),
                    List.of(new FunctionSpan("f", start, 0x80)));
        }
        return registry;
    }

    /** Hits, misses and locates over every object; returns a sum of what they found, so none is dead code. */
    private static long calls(SafepointRegistry registry, Frame frame, int n) {
        long sum = 0;
        for (int i = 0; i < n; i++) {
            long start = 0x100000L * (i % OBJECTS + 1);
            if (registry.lookup(start + 0x10 + 0x20 * (i & 1), frame)) {
                sum += frame.frameSize() + frame.pairCount() + frame.safepointId();
            }
            if (!registry.lookup(start + 0x11, frame)) {
                sum++;
            }
            if (registry.locate(start + 0x40, frame) && frame.hasFunction() && !frame.hasSafepoint()) {
                sum += frame.functionStart();
            }
        }
        return sum;
    }

    @Test
    void lookupsAndLocatesAllocateNothing() throws Exception {
        SafepointRegistry registry = registry();
        Frame frame = new Frame();
        long expected = calls(registry, frame, OBJECTS * 2);

        // The counter must be able to see an allocation made between the two reads.
        long before = allocatedBytes();
        List<long[]> kept = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            kept.add(new long[16]);
        }
        long seen = allocatedBytes() - before;
        assertTrue(seen >= 100 * 16 * 8, "the counter saw only " + seen + " bytes of 100 arrays");
        assertEquals(100, kept.size());

        before = allocatedBytes();
        long sum = calls(registry, frame, CALLS);
        long cold = allocatedBytes() - before;
        assertTrue(cold < CALLS, "cold: " + cold + " bytes for " + CALLS + " rounds of lookups and locates");
        for (int warm = 0; warm < 20; warm++) {
            calls(registry, frame, CALLS);
        }
        before = allocatedBytes();
        sum = calls(registry, frame, CALLS);
        long warm = allocatedBytes() - before;
        assertEquals(0, warm, "warm: bytes allocated by " + CALLS + " rounds of lookups and locates");
        assertEquals(expected * (CALLS / (OBJECTS * 2)) + calls(registry, frame, CALLS % (OBJECTS * 2)), sum,
                "and they found what the first round found");
    }
}
