package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.events.LoadedSymbol;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.ProcessUnwinder;
import dev.safepointkit.registry.FunctionSpan;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.dwarf.EhFrame;
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
 * The walker's debug cross-check against the process unwinder catches a wrong frame size that the
 * walk alone cannot see. A static frame's size is checked at registration (its CFI must agree with
 * its stack map), a dynamic frame's cannot be: csr-chain.o is registered with a copy of its
 * {@code .eh_frame} in which dyn_down's CFA is RBP + 48 instead of RBP + 16 (libgcc keeps the true
 * section, as the host registered it). The walk then steps from dyn_down over its caller, a
 * 32-byte sum_down frame, onto the return address into enter, a safepoint, and ends exactly at
 * the entry slot: validation passes, with a frame and its roots skipped. With the cross-check the
 * same validation fails, naming the frames.
 *
 * <p>The upcall runs on the JIT thread; its outcomes are kept and checked on the test thread.
 */
class UnwindCrossCheckTest {
    static long entrySlot;
    static SafepointRegistry registry;
    static long pollPlan;
    static final List<String> plainOutcomes = new ArrayList<>();
    static final List<String> checkedOutcomes = new ArrayList<>();

    static void recordEntry(MemorySegment slot) {
        entrySlot = slot.address();
    }

    static void gcPollJava(MemorySegment slot) {
        long start = slot.address();
        long end = entrySlot + 8;
        ThreadStack stack = new ThreadStack(MemorySegment.ofAddress(start - 64).reinterpret(end - start + 64), start, end,
                SavedRegisters.savedByPoll(pollPlan, start));
        plainOutcomes.add(outcome(new JitStackWalker(registry), stack));
        checkedOutcomes.add(outcome(new JitStackWalker(registry, ProcessUnwinder.get()::frames), stack));
    }

    private static String outcome(JitStackWalker walker, ThreadStack stack) {
        try {
            return "walked " + walker.validate(stack) + " frames";
        } catch (StackWalkException | RuntimeException e) {
            return "failed: " + e.getMessage();
        }
    }

    @Test
    void aFrameSizeThatSkipsACallerPassesTheWalkAloneButNotTheCrossCheck() throws Throwable {
        plainOutcomes.clear();
        checkedOutcomes.clear();
        registry = new SafepointRegistry();
        LoadedObject[] loaded = new LoadedObject[1];
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            host.addListener(new CorruptingRegistryListener(arena, loaded));
            host.defineUpcall("record_entry", MethodHandles.lookup().findStatic(UnwindCrossCheckTest.class, "recordEntry",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.defineUpcall("gc_poll_java", MethodHandles.lookup().findStatic(UnwindCrossCheckTest.class, "gcPollJava",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.load("csr-chain.o", MemorySegment.ofArray(Files.readAllBytes(
                    Fixtures.projectRoot().resolve("fixtures/jit/x86_64/csr-chain.o"))));
            pollPlan = pollPlan(host.address("gc_poll").orElseThrow(), loaded[0]);
            MemorySegment objects = arena.allocate(16 * 4, 16);
            long expected = RealFramesTest.fillObjects(objects, 4);
            assertEquals(expected, RealFramesTest.enter(host, objects, 3), "nothing moved: the program's own result");
        }
        // enter -> sum_down 3 -> dyn_down -> sum_down 2 -> sum_down 1 -> sum_down 0, each level polling first.
        assertEquals(List.of("walked 2 frames", "walked 3 frames", "walked 4 frames", "walked 5 frames"), plainOutcomes,
                "the walk alone: the poll above dyn_down sees every frame, the others all but sum_down 3");
        assertEquals("walked 2 frames", checkedOutcomes.getFirst(), "no dynamic frame, no difference");
        for (int poll = 1; poll < 4; poll++) {
            int dyn = poll;   // dyn_down's depth at the poll of level 3 - poll
            String checked = checkedOutcomes.get(poll);
            assertTrue(checked.startsWith("failed: the walker has frame " + (dyn + 1) + " (enter in csr-chain.o)"), checked);
            assertTrue(checked.contains("but the cross-check unwinder has SP") && checked.contains("(sum_down in csr-chain.o)")
                    && checked.contains("the step from frame " + dyn + " (dyn_down in csr-chain.o, CFA=RBP+48")
                    && checked.endsWith("disagrees with the process unwinder"), "poll " + poll + ": " + checked);
        }
    }

    private static long pollPlan(long gcPoll, LoadedObject object) {
        return FirstRecordPlans.planAtFirstRecord(registry, gcPoll, object);
    }

    /**
     * Registers each loaded object as RegistryListener does, but with dyn_down's
     * {@code DW_CFA_def_cfa_offset 16} (after {@code push %rbp}; the CFA stays 16 above RBP once RBP
     * is the frame pointer) changed to 48 in a copy of the section: the registry plans from the
     * copy, libgcc still reads the original.
     */
    private static final class CorruptingRegistryListener implements JitEventListener {
        private final Arena arena;
        private final LoadedObject[] loaded;

        CorruptingRegistryListener(Arena arena, LoadedObject[] loaded) {
            this.arena = arena;
            this.loaded = loaded;
        }

        @Override
        public boolean required() {
            return true;
        }

        @Override
        public void objectLoaded(LoadedObject object) {
            loaded[0] = object;
            long start = Long.MAX_VALUE;
            long end = Long.MIN_VALUE;
            for (LoadedSection s : object.sections()) {
                if (s.executable()) {
                    start = Math.min(start, s.address());
                    end = Math.max(end, s.address() + s.size());
                }
            }
            List<FunctionSpan> functions = new ArrayList<>();
            long dynDown = 0;
            for (LoadedSymbol s : object.symbols()) {
                if (s.function()) {
                    functions.add(new FunctionSpan(s.name(), s.address(), s.size()));
                    if (s.name().equals("dyn_down")) {
                        dynDown = s.address();
                    }
                }
            }
            try {
                LoadedSection section = object.section(".eh_frame").orElseThrow();
                MemorySegment copy = arena.allocate(section.size(), 8);
                copy.copyFrom(MemorySegment.ofAddress(section.address()).reinterpret(section.size()));
                EhFrame.Fde fde = EhFrame.parse(copy, section.address()).fdeFor(dynDown + 16);
                int patched = 0;
                for (long at = fde.instructions(); at + 1 < fde.instructionsEnd(); at++) {
                    if (copy.get(ValueLayout.JAVA_BYTE, at) == 0x0e && copy.get(ValueLayout.JAVA_BYTE, at + 1) == 16) {
                        copy.set(ValueLayout.JAVA_BYTE, at + 1, (byte) 48);
                        patched++;
                    }
                }
                assertEquals(1, patched, "dyn_down's FDE sets the CFA offset 16 once");
                registry.register(object.key(), object.name(), start, end - start, object.stackMaps().orElse(null), functions,
                        EhFrame.parse(copy, section.address()));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public void objectFreeing(LoadedObject object) {
            registry.unregister(object.key());
        }
    }
}
