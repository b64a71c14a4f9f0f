package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.registry.UnwindPlan;
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
import org.junit.jupiter.api.Test;

/**
 * The csr-chain program split in two objects: csr-chain-poll.o (gc_poll, with its CFI, so the
 * poll's saves of every callee-saved register are known) and csr-chain-noeh.o (enter, sum_down,
 * dyn_down, with {@code .eh_frame} removed). Every frame of the second object is registered
 * without a plan, so its step marks every callee-saved register of its caller undefined. The
 * innermost frame's Register roots resolve to the poll's saves; the frame above it keeps its
 * roots in registers the innermost frame pushed where no CFI says, so its walk must end with an
 * error naming that frame, and must not read the poll's save slot (the innermost frame's value).
 *
 * <p>The upcall runs on the JIT thread; what it finds is kept and checked on the test thread.
 */
class UndefinedRegistersTest {
    static long entrySlot;
    static SafepointRegistry registry;
    static long pollPlan;
    static final List<String> failures = new ArrayList<>();
    static final List<List<Integer>> visited = new ArrayList<>();
    static final List<Long> innermostRoots = new ArrayList<>();
    static Throwable unexpected;

    static void recordEntry(MemorySegment slot) {
        entrySlot = slot.address();
    }

    static void gcPollJava(MemorySegment slot) {
        try {
            long start = slot.address();
            long end = entrySlot + 8;
            ThreadStack stack = new ThreadStack(MemorySegment.ofAddress(start - 64).reinterpret(end - start + 64), start, end,
                    SavedRegisters.savedByPoll(pollPlan, start));
            JitStackWalker walker = new JitStackWalker(registry);
            List<Integer> depths = new ArrayList<>();
            try {
                walker.walk(stack, (batch, s) -> {
                    depths.add(batch.depth());
                    if (batch.depth() == 0) {
                        // The innermost frame's root is in RBX, which the poll saved: its slot is the poll's.
                        innermostRoots.add(batch.baseCount() == 1 && batch.baseSlot(0) == stack.runs().getFirst().registers().slotOf(3)
                                ? stack.word(batch.baseSlot(0)) : -1L);
                    }
                });
                failures.add("none");
            } catch (StackWalkException e) {
                failures.add(e.getMessage());
            }
            visited.add(depths);
        } catch (Throwable t) {
            if (unexpected == null) {
                unexpected = t;
            }
        }
    }

    /**
     * Resets what the upcalls record, makes a fresh registry fed by {@code host}, defines the
     * upcalls, and loads the named fixtures in order.
     *
     * @return the loaded objects, in the order given
     */
    private static List<LoadedObject> loadFresh(JitHost host, Arena arena, String... names) throws Exception {
        failures.clear();
        visited.clear();
        innermostRoots.clear();
        unexpected = null;
        registry = new SafepointRegistry();
        List<LoadedObject> loaded = new ArrayList<>();
        host.addListener(new RegistryListener(registry));
        host.addListener(new JitEventListener() {
            @Override
            public void objectLoaded(LoadedObject object) {
                loaded.add(object);
            }
        });
        host.defineUpcall("record_entry", MethodHandles.lookup().findStatic(UndefinedRegistersTest.class, "recordEntry",
                MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
        host.defineUpcall("gc_poll_java", MethodHandles.lookup().findStatic(UndefinedRegistersTest.class, "gcPollJava",
                MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
        for (String name : names) {
            host.load(name, MemorySegment.ofArray(Files.readAllBytes(Fixtures.projectRoot().resolve("fixtures/jit/x86_64/" + name))));
        }
        return loaded;
    }

    @Test
    void aRegisterRootAboveAFrameWithoutCfiFailsClosedNamingTheFrame() throws Throwable {
        int depth = 3;   // enter -> sum_down(3) -> dyn_down(2) -> sum_down(2) -> sum_down(1) -> sum_down(0)
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            List<LoadedObject> loaded = loadFresh(host, arena, "csr-chain-poll.o", "csr-chain-noeh.o");
            assertTrue(loaded.get(1).section(".eh_frame").isEmpty(), "csr-chain-noeh.o has no .eh_frame");
            pollPlan = pollPlan(host.address("gc_poll").orElseThrow(), loaded.get(0));
            long sumDown = host.address("sum_down").orElseThrow();
            Frame f = new Frame();
            assertTrue(registry.lookup(sumDown + 0x14, f) && !UnwindPlan.present(f.unwindPlan()),
                    "sum_down's safepoints have no plan");

            int objects = depth + 1;
            MemorySegment space = arena.allocate(16L * objects, 16);
            long expected = RealFramesTest.fillObjects(space, objects);
            long sum = RealFramesTest.enter(host, space, depth);
            if (unexpected != null) {
                throw unexpected;
            }
            assertEquals(expected, sum, "nothing moved: every walk failed before the visitor relocated anything");
            // Polls innermost first by level: 3 (under enter), 2 (under dyn_down), 1 and 0 (under sum_down).
            String[] callers = {"enter", "dyn_down", "sum_down", "sum_down"};
            assertEquals(callers.length, failures.size(), "one walk per poll: " + failures);
            for (int p = 0; p < callers.length; p++) {
                String m = failures.get(p);
                assertTrue(m.startsWith("frame 1 (" + callers[p] + " in csr-chain-noeh.o, return address 0x"),
                        "poll " + p + ": " + m);
                String why = callers[p].equals("dyn_down")
                        ? "dynamic frame size, no unwind plan, and no frame pointer is known (no frame below it saved RBP)"
                        : "and no saved value for it (no frame between it and the poll saved it)";
                assertTrue(m.contains(why), "poll " + p + ": " + m);
                assertEquals(List.of(0), visited.get(p), "poll " + p + ": only the innermost frame was visited");
            }
            // The innermost frame's root did resolve, through the poll's save of RBX, to the level's object.
            for (int p = 0; p < callers.length; p++) {
                assertEquals(space.address() + 16L * p, innermostRoots.get(p), "poll " + p + ": the innermost frame's RBX root");
            }
        }
    }

    @Test
    void aRegisterRootAboveAFrameWhoseCfiSaysUndefinedFailsClosedNamingTheFrame() throws Throwable {
        // csr-undefined.o: outer keeps its object in RBX across its call to lose_rbx, whose CFI
        // says RBX is undefined there (its frame's only register rule); the poll saved RBX.
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            List<LoadedObject> loaded = loadFresh(host, arena, "csr-undefined.o");
            pollPlan = pollPlan(host.address("gc_poll").orElseThrow(), loaded.getFirst());
            assertTrue(UnwindPlan.saved(pollPlan, UnwindPlan.slotOf(3)) != 0, "the poll saved RBX");
            MemorySegment object = arena.allocate(16, 16);
            object.set(ValueLayout.JAVA_LONG, 0, 1234);
            long value = (long) host.downcall("outer", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS))
                    .invokeExact(object);
            if (unexpected != null) {
                throw unexpected;
            }
            assertEquals(1234, value);
            assertEquals(1, failures.size(), "one poll: " + failures);
            String m = failures.getFirst();
            String prefix = "frame 1 (outer in csr-undefined.o, return address 0x";
            assertTrue(m.startsWith(prefix) && m.contains(
                    "): a root in register R#3 and no saved value for it (no frame between it and the poll saved it)"), m);
            long returnAddress = Long.parseUnsignedLong(m.substring(prefix.length(), m.indexOf(')')), 16);
            Frame f = new Frame();
            assertTrue(registry.lookup(returnAddress, f) && "outer".equals(f.functionName()), "the message's return address is outer's");
            assertTrue(registry.lookup(host.address("lose_rbx").orElseThrow() + 6, f), "lose_rbx's call to gc_poll is a safepoint");
            assertEquals(UnwindPlan.UNDEFINED, UnwindPlan.saved(f.unwindPlan(), UnwindPlan.slotOf(3)), UnwindPlan.describe(f.unwindPlan()));
            assertEquals(List.of(0), visited.getFirst(), "lose_rbx, the innermost frame, was visited");
        }
    }

    @Test
    void aRegisterRootAboveAFrameTooLargeForAStepAndWithoutCfiFailsClosed() throws Throwable {
        // csr-bigframe-noeh.o: big_frame's frame (over 1 MiB, no .eh_frame) has no step the registry
        // can encode, so the walk steps it by its frame size knowing nothing of its caller's
        // registers; outer_big keeps its object in RBX, which the poll saved for big_frame.
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            List<LoadedObject> loaded = loadFresh(host, arena, "csr-chain-poll.o", "csr-bigframe-noeh.o");
            pollPlan = pollPlan(host.address("gc_poll").orElseThrow(), loaded.getFirst());
            Frame f = new Frame();
            assertTrue(registry.lookup(host.address("big_frame").orElseThrow() + 0x11, f), "big_frame's call is a safepoint");
            assertTrue(f.frameSize() > 1 << 20 && !UnwindPlan.present(f.walkStep()), "no step for a frame of " + f.frameSize());
            MemorySegment object = arena.allocate(16, 16);
            object.set(ValueLayout.JAVA_LONG, 0, 4321);
            java.lang.invoke.MethodHandle outer = host.downcall("outer_big",
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
            long[] value = new long[1];
            // The frame needs more stack than a thread gets by default.
            Thread t = new Thread(null, () -> {
                try {
                    value[0] = (long) outer.invokeExact(object);
                } catch (Throwable e) {
                    unexpected = e;
                }
            }, "big-frame", 16 << 20);
            t.start();
            t.join();
            if (unexpected != null) {
                throw unexpected;
            }
            assertEquals(4321, value[0]);
            assertEquals(1, failures.size(), "one poll: " + failures);
            String m = failures.getFirst();
            assertTrue(m.startsWith("frame 1 (outer_big in csr-bigframe-noeh.o, return address 0x"
                    + Long.toHexString(host.address("outer_big").orElseThrow() + 0x13) + "): a root in register R#3 and no saved"
                    + " value for it (no frame between it and the poll saved it)"), m);
            assertEquals(List.of(0), visited.getFirst(), "big_frame, the innermost frame, was visited");
        }
    }

    /** gc_poll's plan at its call out, from the poll object's stack map; it must have one. */
    private static long pollPlan(long gcPoll, LoadedObject object) {
        long plan = FirstRecordPlans.planAtFirstRecord(registry, gcPoll, object);
        assertTrue(UnwindPlan.present(plan), "gc_poll has a plan");
        return plan;
    }
}
