package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.ProcessUnwinder;
import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.LocationKind;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * csr-chain.o (llc -max-registers-for-gc-values=8 -fixup-allow-gcptr-in-csr): every frame keeps
 * its object in a callee-saved register, so at depth its value is in some callee's save slot that
 * only the CFI locates; every third frame is dynamic (a runtime-sized alloca) under callers without
 * frame pointers. Each level polls, and each poll moves every object and poisons the old copies:
 * a root the walk missed or resolved to the wrong slot reads poison, and the sum comes out wrong.
 * At each poll every frame's deopt values (in callee-saved registers where llc could) are read
 * back with {@link JitStackWalker#frameValue} and compared with what the IR passed. Every walk
 * runs with the debug cross-check against the process unwinder (libgcc, through the object's
 * registered {@code .eh_frame}): the frame lists must agree at every poll.
 *
 * <p>The upcall runs on the JIT thread; its failures are kept and rethrown on the test thread.
 */
class CalleeSavedRootsTest {
    private static final long POISON = 0xDEAD_BEEF_DEAD_BEEFL;
    private static final int OBJECT = 16;

    static long entrySlot;
    static SafepointRegistry registry;
    static long pollPlan;
    static MemorySegment toSpace;
    static long next;
    static long space;
    static long spaceSize;
    static long roots;
    static int polls;
    static int deepestRegisterRoot;
    static int dynamicFrames;
    static Throwable failure;
    static int depth;
    static boolean deoptInRegisterDeep;
    static int crossChecks;

    static void recordEntry(MemorySegment slot) {
        entrySlot = slot.address();
    }

    static void gcPollJava(MemorySegment slot) {
        try {
            collect(slot.address());
        } catch (Throwable t) {
            if (failure == null) {
                failure = t;
            }
        }
    }

    private static void collect(long start) throws StackWalkException {
        long end = entrySlot + 8;
        ThreadStack stack = new ThreadStack(MemorySegment.ofAddress(start - 64).reinterpret(end - start + 64), start, end,
                SavedRegisters.savedByPoll(pollPlan, start));
        // The debug cross-check on: libgcc must find the same frames as the walker at every poll.
        JitStackWalker walker = new JitStackWalker(registry, (slot, saved, known, out) -> {
            crossChecks++;
            return ProcessUnwinder.get().frames(slot, saved, known, out);
        });
        walker.validate(stack);
        // The objects form one array (each level's object is its parent's + 16, computed after the
        // parent moved), so the whole space moves at once: same layout, new place.
        long from = space;
        long to = next;
        next += spaceSize;
        MemorySegment.copy(MemorySegment.ofAddress(from).reinterpret(spaceSize), 0,
                MemorySegment.ofAddress(to).reinterpret(spaceSize), 0, spaceSize);
        RootRelocator mover = new RootRelocator(old -> {
            if (Long.compareUnsigned(old - from, spaceSize) >= 0) {
                throw new IllegalStateException("root 0x" + Long.toHexString(old) + " is not in the space");
            }
            return old - from + to;
        });
        List<String> frames = new ArrayList<>();
        walker.walk(stack, (batch, s) -> {
            Frame f = batch.frame();
            StringBuilder values = new StringBuilder(f.functionName());
            for (int i = 0; i < f.deoptCount(); i++) {
                values.append(' ').append(walker.frameValue(f.deopt(i)));
                if (batch.depth() > 0 && f.kind(f.deopt(i)) == LocationKind.REGISTER) {
                    deoptInRegisterDeep = true;
                }
            }
            frames.add(values.toString());
            for (int i = 0; i < f.pairCount(); i++) {
                if (f.kind(f.base(i)) == LocationKind.REGISTER) {
                    deepestRegisterRoot = Math.max(deepestRegisterRoot, batch.depth());
                }
            }
            if (f.hasDynamicFrameSize()) {
                dynamicFrames++;
            }
            mover.visitFrame(batch, s);
        });
        List<String> expected = expectedDeopt(Long.parseLong(frames.getFirst().split(" ")[1]));
        for (int f : new int[] {0, 1, 4}) {   // the 1st, 2nd and 5th frame, where the chain has them
            if (f < expected.size()) {
                assertEquals(expected.get(f), frames.get(f), "frame " + f + " at the poll of level " + expected.getFirst());
            }
        }
        assertEquals(expected, frames, "every frame's deopt values");
        MemorySegment old = MemorySegment.ofAddress(from).reinterpret(spaceSize);
        for (long off = 0; off < spaceSize; off += 8) {
            old.set(ValueLayout.JAVA_LONG, off, POISON);
        }
        space = to;
        roots += mover.relocatedSlots();
        polls++;
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 3, 8, 20})
    void everyRootInACalleeSavedRegisterMovesAtEveryPollAndDeoptValuesReadBack(int chainDepth) throws Throwable {
        depth = chainDepth;
        deoptInRegisterDeep = false;
        crossChecks = 0;
        failure = null;
        polls = 0;
        deepestRegisterRoot = -1;
        dynamicFrames = 0;
        registry = new SafepointRegistry();
        LoadedObject[] loaded = new LoadedObject[1];
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            host.addListener(new RegistryListener(registry));
            host.addListener(new JitEventListener() {
                @Override
                public void objectLoaded(LoadedObject object) {
                    loaded[0] = object;
                }
            });
            host.defineUpcall("record_entry", MethodHandles.lookup().findStatic(CalleeSavedRootsTest.class, "recordEntry",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.defineUpcall("gc_poll_java", MethodHandles.lookup().findStatic(CalleeSavedRootsTest.class, "gcPollJava",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.load("csr-chain.o", MemorySegment.ofArray(Files.readAllBytes(
                    Fixtures.projectRoot().resolve("fixtures/jit/x86_64/csr-chain.o"))));
            pollPlan = pollPlan(host.address("gc_poll").orElseThrow(), loaded[0]);

            int objects = depth + 1;
            MemorySegment fromSpace = arena.allocate((long) OBJECT * objects, 16);
            toSpace = arena.allocate((long) OBJECT * objects * (objects + 2), 16);
            next = toSpace.address();
            space = fromSpace.address();
            spaceSize = (long) OBJECT * objects;
            roots = 0;
            long expected = RealFramesTest.fillObjects(fromSpace, objects);
            long sum = RealFramesTest.enter(host, fromSpace, depth);
            if (failure != null) {
                throw failure;
            }
            assertEquals(objects, polls, "one collection per level");
            assertEquals(2 * polls, crossChecks, "the process unwinder agreed with the validation and the walk of every poll");
            assertTrue(roots >= (long) objects * (objects + 1) / 2, roots + " roots moved: each poll moves each level above it");
            assertEquals(expected, sum, "every object read through its relocated register roots");
            if (depth >= 3) {
                assertTrue(deepestRegisterRoot >= 3, "a register root " + deepestRegisterRoot + " frames deep");
                assertTrue(dynamicFrames > 0, "dynamic frames walked");
                assertTrue(deoptInRegisterDeep, "deopt values read from callee-saved registers above the polling frame");
            }
        }
    }

    @org.junit.jupiter.api.Test
    void theCoordinatorTakesOnlyAPollPlanThatSavesRbpJustBelowTheSlot() throws Throwable {
        registry = new SafepointRegistry();
        LoadedObject[] loaded = new LoadedObject[1];
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            host.addListener(new RegistryListener(registry));
            host.addListener(new JitEventListener() {
                @Override
                public void objectLoaded(LoadedObject object) {
                    loaded[0] = object;
                }
            });
            host.defineUpcall("record_entry", MethodHandles.lookup().findStatic(CalleeSavedRootsTest.class, "recordEntry",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.defineUpcall("gc_poll_java", MethodHandles.lookup().findStatic(CalleeSavedRootsTest.class, "gcPollJava",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.load("csr-chain.o", MemorySegment.ofArray(Files.readAllBytes(
                    Fixtures.projectRoot().resolve("fixtures/jit/x86_64/csr-chain.o"))));
            SafepointCoordinator coordinator = new SafepointCoordinator(0);
            coordinator.pollSaves(pollPlan(host.address("gc_poll").orElseThrow(), loaded[0]));   // every register, RBP at CFA-16
            long sumDown = pollPlan(host.address("sum_down").orElseThrow(), loaded[0]);          // RBX, R14, R15 only
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> coordinator.pollSaves(sumDown));
            assertTrue(e.getMessage().contains("does not save RBP at CFA-16"), e.getMessage());
            e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> coordinator.pollSaves(dev.safepointkit.registry.UnwindPlan.NONE));
            assertTrue(e.getMessage().contains("registered without .eh_frame"), e.getMessage());
        }
    }

    /**
     * The frames a poll at level {@code n} sees, innermost first, each as its function and deopt
     * values as the IR passes them: (level, call-site tag, the level's weight), dyn_down (level,
     * 2222, -7), enter (depth, 5555, 0).
     */
    private static List<String> expectedDeopt(long n) {
        List<String> frames = new ArrayList<>();
        frames.add("sum_down " + n + " 1111 " + weight(n));
        for (long m = n + 1; m <= depth; m++) {
            if (m % 3 == 0) {
                frames.add("dyn_down " + (m - 1) + " 2222 -7");
                frames.add("sum_down " + m + " 4444 " + weight(m));
            } else {
                frames.add("sum_down " + m + " 3333 " + weight(m));
            }
        }
        frames.add("enter " + depth + " 5555 0");
        return frames;
    }

    /** The weight of level {@code n}'s object, as fillObjects wrote it (level depth is object 0). */
    private static long weight(long n) {
        return 3 + (depth - n) % 5;
    }

    private static long pollPlan(long gcPoll, LoadedObject object) {
        return FirstRecordPlans.planAtFirstRecord(registry, gcPoll, object);
    }
}
