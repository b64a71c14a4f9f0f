package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * csr-derived.o (llc -max-registers-for-gc-values=8 -fixup-allow-gcptr-in-csr): every frame keeps
 * its object in RBX and a pointer into it, a derived pointer relocated with it, in R15, across its
 * poll and its call. At each poll the whole space moves and the old copy is poisoned; the JIT code
 * reads each weight through its derived pointer after the calls, so a derived pointer the walk
 * missed or rebased wrongly reads poison and the sum comes out wrong. A collector that skips one
 * frame on purpose shows that it does. Every walk runs with the cross-check against the process
 * unwinder.
 *
 * <p>The upcall runs on the JIT thread; its failures are kept and rethrown on the test thread.
 */
class CalleeSavedDerivedTest {
    private static final long POISON = 0xDEAD_BEEF_DEAD_BEEFL;
    private static final int OBJECT = 16;

    static long entrySlot;
    static SafepointRegistry registry;
    static long pollPlan;
    static long next;
    static long space;
    static long spaceSize;
    static long derivedMoved;
    static int polls;
    static int deepestRegisterDerived;
    /** The frame whose roots the last poll's collection leaves unmoved, or -1. */
    static int skip;
    static int lastPoll;
    static Throwable failure;

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
        JitStackWalker walker = new JitStackWalker(registry, ProcessUnwinder.get()::frames);
        walker.validate(stack);
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
        boolean skipping = polls == lastPoll;
        walker.walk(stack, (batch, s) -> {
            Frame f = batch.frame();
            for (int i = 0; i < f.pairCount(); i++) {
                if (f.kind(f.derived(i)) == LocationKind.REGISTER && f.register(f.derived(i)) != f.register(f.base(i))) {
                    deepestRegisterDerived = Math.max(deepestRegisterDerived, batch.depth());
                }
            }
            derivedMoved += batch.derivedCount();
            if (!skipping || batch.depth() != skip) {
                mover.visitFrame(batch, s);
            }
        });
        MemorySegment old = MemorySegment.ofAddress(from).reinterpret(spaceSize);
        for (long off = 0; off < spaceSize; off += 8) {
            old.set(ValueLayout.JAVA_LONG, off, POISON);
        }
        space = to;
        polls++;
    }

    @ParameterizedTest
    @ValueSource(ints = {3, 8, 20})
    void derivedPointersInCalleeSavedRegistersMoveWithTheirBasesAtEveryPoll(int depth) throws Throwable {
        long[] sums = run(depth, -1);
        assertEquals(sums[1], sums[0], "every weight read through its relocated derived pointer");
        assertEquals(depth + 1, polls, "one collection per level");
        assertTrue(deepestRegisterDerived >= 3, "a derived pointer in a register " + deepestRegisterDerived + " frames deep");
        assertTrue(derivedMoved >= (long) (depth + 1) * (depth + 2) / 2, derivedMoved + " derived pointers: one per level above each poll");
    }

    @Test
    void aCollectorThatMissesOneFramesRegistersReadsPoison() throws Throwable {
        // The poll of level 0 sees 12 frames; the collector leaves the roots of the 4th unmoved.
        long[] sums = run(10, 3);
        assertNotEquals(sums[1], sums[0], "a stale base and derived pointer in callee-saved registers, 3 frames up");
    }

    /** Runs enter(objects, depth) with a collection at each poll; {sum, expected}. */
    private static long[] run(int depth, int skip0) throws Throwable {
        failure = null;
        polls = 0;
        derivedMoved = 0;
        deepestRegisterDerived = -1;
        skip = skip0;
        lastPoll = depth;   // polls run from level depth down to level 0
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
            host.defineUpcall("record_entry", MethodHandles.lookup().findStatic(CalleeSavedDerivedTest.class, "recordEntry",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.defineUpcall("gc_poll_java", MethodHandles.lookup().findStatic(CalleeSavedDerivedTest.class, "gcPollJava",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.load("csr-derived.o", MemorySegment.ofArray(Files.readAllBytes(
                    Fixtures.projectRoot().resolve("fixtures/jit/x86_64/csr-derived.o"))));
            pollPlan = pollPlan(host.address("gc_poll").orElseThrow(), loaded[0]);

            int objects = depth + 1;
            MemorySegment fromSpace = arena.allocate((long) OBJECT * objects, 16);
            MemorySegment toSpace = arena.allocate((long) OBJECT * objects * (objects + 2), 16);
            next = toSpace.address();
            space = fromSpace.address();
            spaceSize = (long) OBJECT * objects;
            long expected = RealFramesTest.fillObjects(fromSpace, objects);
            // Only the last poll (level 0, the deepest stack) skips a frame: an earlier miss would
            // make the next collection find a root outside the space instead of the sum going wrong.
            long sum = RealFramesTest.enter(host, fromSpace, depth);
            if (failure != null) {
                throw failure;
            }
            return new long[] {sum, expected};
        }
    }

    private static long pollPlan(long gcPoll, LoadedObject object) {
        return FirstRecordPlans.planAtFirstRecord(registry, gcPoll, object);
    }
}
