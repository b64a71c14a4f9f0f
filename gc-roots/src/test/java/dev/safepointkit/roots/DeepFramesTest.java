package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.registry.Frame;
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
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The walk over real LLVM frames of fixtures/jit/src/deep.ll, with (deep-fp.o) and without
 * (deep.o) frame pointers: deep_enter and depth + 1 frames of deep, four roots each, walked from
 * deep_poll's return-address slot with nothing saved by the poll. deep-fp.o's CFA is RBP-based,
 * but its frames have a static size, so the walk needs no RBP; with deep_poll's saved RBP known
 * it finds the same frames and slots. Each frame's batch holds the slots its own record names at its
 * own SP (the walk reuses a plan from frame to frame of the recursion).
 *
 * <p>And a warm walk allocates nothing. The upcall runs on the JIT thread; what it found is checked on the test thread.
 */
class DeepFramesTest {
    static long entrySlot;
    static SafepointRegistry registry;
    static MemorySegment objects;
    static final List<String> problems = new ArrayList<>();
    static int frames;
    /** What deepPollJava does with the live stack below deep_poll. */
    static PollAction atPoll;

    interface PollAction {
        void run(JitStackWalker walker, MemorySegment memory, long start, long end) throws Throwable;
    }

    static void recordEntry(MemorySegment slot) {
        entrySlot = slot.address();
    }

    /** Hands the live stack below deep_poll to {@link #atPoll}. Never throws (an upcall): problems are kept. */
    static void deepPollJava(MemorySegment slot) {
        try {
            long start = slot.address();
            long end = entrySlot + 8;
            MemorySegment memory = MemorySegment.ofAddress(start - 8).reinterpret(end - start + 8);
            atPoll.run(new JitStackWalker(registry), memory, start, end);
        } catch (Throwable t) {
            problems.add(t.toString());
        }
    }

    /** The walks of the first test: without and with deep_poll's saved RBP, every root checked. */
    private static void walkAndCheck(JitStackWalker walker, MemorySegment memory, long start, long end) throws Throwable {
        List<Long> none = new ArrayList<>();
        frames = walker.walk(new ThreadStack(memory, start, end, SavedRegisters.none()), collect(none));
        // deep_poll keeps a frame pointer: its prologue pushed deep's RBP just below its return address.
        List<Long> withRbp = new ArrayList<>();
        walker.walk(new ThreadStack(memory, start, end, SavedRegisters.none().savedAt(6, start - 8)), collect(withRbp));
        if (!none.equals(withRbp)) {
            problems.add("the walk with RBP known found other slots");
        }
        if (none.size() != 4 * frames) {
            problems.add(none.size() + " roots in " + frames + " frames");
        }
        for (long rootSlot : none) {
            long value = memory.get(ValueLayout.JAVA_LONG, rootSlot - memory.address());
            long offset = value - objects.address();
            if (offset < 0 || offset >= 64 || offset % 16 != 0) {
                problems.add("slot 0x" + Long.toHexString(rootSlot) + " holds 0x" + Long.toHexString(value) + ", no object");
                break;
            }
        }
    }

    private static RootVisitor collect(List<Long> slots) {
        return (batch, stack) -> {
            // What the batch says must be what the frame's own record says at the frame's own SP:
            // deep_enter's slots and deep's differ, and every frame of the recursion has its own SP.
            Frame f = batch.frame();
            Set<Long> named = new TreeSet<>();
            for (int i = 0; i < f.pairCount(); i++) {
                named.add(batch.sp() + f.offset(f.base(i)));
                named.add(batch.sp() + f.offset(f.derived(i)));
            }
            Set<Long> batched = new TreeSet<>();
            for (int i = 0; i < batch.baseCount(); i++) {
                batched.add(batch.baseSlot(i));
            }
            for (int i = 0; i < batch.derivedCount(); i++) {
                batched.add(batch.derivedSlot(i));
            }
            if (!named.equals(batched) && problems.size() < 5) {
                problems.add("frame " + batch.depth() + " (" + f.functionName() + ", SP 0x" + Long.toHexString(batch.sp())
                        + "): its record names " + hex(named) + ", the batch holds " + hex(batched));
            }
            for (int i = 0; i < batch.baseCount(); i++) {
                slots.add(batch.baseSlot(i));
            }
            for (int i = 0; i < batch.derivedCount(); i++) {
                slots.add(batch.derivedSlot(i));
            }
        };
    }

    private static List<String> hex(Set<Long> slots) {
        return slots.stream().map(Long::toHexString).toList();
    }

    @ParameterizedTest
    @ValueSource(strings = {"deep-fp.o", "deep.o"})
    void everyFrameAndRootIsFoundWithoutAKnownFramePointer(String object) throws Throwable {
        int depth = 200;
        assertEquals(10L * (depth + 1), runDeep(object, depth, DeepFramesTest::walkAndCheck));
        assertTrue(problems.isEmpty(), problems::toString);
        assertEquals(depth + 2, frames, "deep_enter and depth + 1 frames of deep");
    }

    /**
     * Loads {@code object}, calls deep_enter with depth {@code depth} over four objects whose first
     * words are 1 to 4, with {@code action} run at the bottom; returns deep_enter's result.
     */
    private static long runDeep(String object, int depth, PollAction action) throws Throwable {
        problems.clear();
        frames = 0;
        atPoll = action;
        registry = new SafepointRegistry();
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            host.addListener(new RegistryListener(registry));
            host.defineUpcall("record_entry", MethodHandles.lookup().findStatic(DeepFramesTest.class, "recordEntry",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.defineUpcall("deep_poll_java", MethodHandles.lookup().findStatic(DeepFramesTest.class, "deepPollJava",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.load(object, MemorySegment.ofArray(Files.readAllBytes(Fixtures.projectRoot().resolve("fixtures/jit/x86_64/" + object))));
            objects = arena.allocate(64, 16);
            for (int i = 0; i < 4; i++) {
                objects.set(ValueLayout.JAVA_LONG, 16L * i, i + 1);
            }
            MethodHandle enter = host.downcall("deep_enter", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
            return (long) enter.invokeExact(objects, objects.asSlice(16), objects.asSlice(32), objects.asSlice(48), (long) depth);
        }
    }

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    /** Sums the roots' slot addresses: reads every batch, allocates nothing. */
    static final class Summing implements RootVisitor {
        long slots;
        long count;

        @Override
        public void visitFrame(RootBatch batch, ThreadStack stack) {
            for (int i = 0; i < batch.baseCount(); i++) {
                slots += batch.baseSlot(i);
            }
            for (int i = 0; i < batch.derivedCount(); i++) {
                slots += batch.derivedSlot(i);
            }
            count += batch.baseCount() + batch.derivedCount();
        }
    }

    /**
     * A warm walk allocates nothing, as {@link JitStackWalker} says: the live stack walked 2,000
     * times from inside deep_poll with one stack, walker and visitor, then the JVM's per-thread
     * allocation counter read around 200 more walks (on the JIT thread, in the upcall).
     */
    @Test
    void aWarmWalkOfTheLiveStackAllocatesNothing() throws Throwable {
        int walks = 200;
        long[] measured = new long[3];   // bytes of the warm walks, bytes the counter saw of a known allocation, roots
        runDeep("deep.o", 200, (walker, memory, start, end) -> {
            ThreadStack stack = new ThreadStack(memory, start, end, SavedRegisters.none());
            Summing visitor = new Summing();
            frames = walker.walk(stack, visitor);
            long roots = visitor.count;
            long firstSum = visitor.slots;
            for (int i = 1; i < 2_000; i++) {
                walker.walk(stack, visitor);
            }
            // The counter must see an allocation made between its two reads on this thread.
            long before = THREADS.getCurrentThreadAllocatedBytes();
            Object[] kept = new Object[64];
            for (int i = 0; i < kept.length; i++) {
                kept[i] = new long[8];
            }
            measured[1] = THREADS.getCurrentThreadAllocatedBytes() - before;
            visitor.slots = 0;
            visitor.count = 0;
            before = THREADS.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < walks; i++) {
                walker.walk(stack, visitor);
            }
            measured[0] = THREADS.getCurrentThreadAllocatedBytes() - before;
            measured[2] = roots;
            if (visitor.count != walks * roots || visitor.slots != walks * firstSum || kept[kept.length - 1] == null) {
                problems.add("the measured walks found " + visitor.count + " roots, not " + walks + " x " + roots);
            }
        });
        assertTrue(problems.isEmpty(), problems::toString);
        assertEquals(202, frames, "deep_enter and 201 frames of deep");
        assertEquals(4L * frames, measured[2]);
        assertTrue(measured[1] >= 64 * 8 * 8, "the counter saw only " + measured[1] + " bytes of 64 arrays");
        assertEquals(0, measured[0], "bytes allocated by " + walks + " warm walks of " + frames + " frames");
    }
}
