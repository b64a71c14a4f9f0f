package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The walker on frames of real LLVM-compiled code (fixtures/jit/src/roots.ll, statepoints from
 * rewrite-statepoints-for-gc): at the poll, Java walks every JIT frame, copies every object it
 * finds a root for to new memory, fills the old memory with poison, and relocates the roots.
 * The JIT code then reads its objects again: a missed or stale root reads poison and the sum
 * comes out wrong.
 */
class RealFramesTest {
    private static final long POISON = 0xDEAD_BEEF_DEAD_BEEFL;
    private static final int OBJECT = 16;

    /** State of the one test running: the upcalls are static. */
    static long entrySlot;
    static SafepointRegistry registry;
    static MemorySegment fromSpace;
    static MemorySegment toSpace;
    static int framesWalked;
    static long rootsRelocated;
    static Throwable failure;

    static void recordEntry(MemorySegment slot) {
        entrySlot = slot.address();
    }

    /** The poll: walk, move, poison. Upcalls must not throw, so failures are kept for the test. */
    static void gcPollJava(MemorySegment slot) {
        try {
            long start = slot.address();
            long end = entrySlot + 8;
            // The thread's own stack between the poll's return-address slot and enter's: live,
            // mapped, and exactly end - start bytes.
            MemorySegment stackMemory = MemorySegment.ofAddress(start).reinterpret(end - start);
            Map<Long, Long> forwarded = new HashMap<>();
            long[] next = {toSpace.address()};
            RootRelocator relocator = new RootRelocator(old -> forwarded.computeIfAbsent(old, o -> {
                long fresh = next[0];
                next[0] += OBJECT;
                // The mover only sees object starts: each is 16 bytes in from-space.
                MemorySegment.copy(MemorySegment.ofAddress(o).reinterpret(OBJECT), 0,
                        MemorySegment.ofAddress(fresh).reinterpret(OBJECT), 0, OBJECT);
                return fresh;
            }));
            framesWalked = new JitStackWalker(registry).walk(
                    new ThreadStack(stackMemory, start, end, SavedRegisters.none()), relocator);
            rootsRelocated = relocator.relocatedSlots();
            for (long off = 0; off < fromSpace.byteSize(); off += 8) {
                fromSpace.set(ValueLayout.JAVA_LONG, off, POISON);
            }
        } catch (Throwable t) {
            failure = t;
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 7, 300})
    void everyRootOfEveryFrameIsFoundAndRelocated(int depth) throws Throwable {
        failure = null;
        registry = new SafepointRegistry();
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            host.addListener(new RegistryListener(registry));
            host.defineUpcall("record_entry", MethodHandles.lookup().findStatic(RealFramesTest.class, "recordEntry",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.defineUpcall("gc_poll_java", MethodHandles.lookup().findStatic(RealFramesTest.class, "gcPollJava",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.load("roots.o", MemorySegment.ofArray(
                    Files.readAllBytes(Fixtures.projectRoot().resolve("fixtures/jit/x86_64/roots.o"))));

            int objects = depth + 1;
            fromSpace = arena.allocate((long) OBJECT * objects, 16);
            toSpace = arena.allocate((long) OBJECT * objects, 16);
            long expected = 0;
            for (int i = 0; i < objects; i++) {
                long value = 1000 + 7L * i;
                long weight = 3 + i % 5;
                fromSpace.set(ValueLayout.JAVA_LONG, (long) OBJECT * i, value);
                fromSpace.set(ValueLayout.JAVA_LONG, (long) OBJECT * i + 8, weight);
                expected += value * weight;
            }
            MethodHandle enter = host.downcall("enter",
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
            long sum = (long) enter.invokeExact(fromSpace, (long) depth);

            assertNull(failure, () -> "the poll failed: " + failure);
            assertEquals(objects + 1, framesWalked, "sum_down frames and enter");
            assertEquals(expected, sum, "every object was read from its new place");
            assertTrue(rootsRelocated >= objects, "at least one root per sum_down frame");
            assertEquals(POISON, fromSpace.get(ValueLayout.JAVA_LONG, 0), "the old objects are poison");
        }
    }
}
