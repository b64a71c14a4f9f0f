package dev.safepointkit.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.stackmap.LocationKind;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The walk plans made at registration ({@link Frame#walkStep}, the root plan): what a walk reads
 * per frame instead of the record and the frame size.
 */
class WalkPlanTest {
    static void hostPoll() {
    }

    /** Every safepoint of real objects: the step agrees with the CFI and the frame size, the root plan with the record. */
    @Test
    void realObjectsPlansAgreeWithTheirRecordsAndCfi() throws Exception {
        int rbpStepsBySize = 0;
        int plannedWithRoots = 0;
        int unplanned = 0;
        for (String name : new String[] {"deep-fp.o", "deep.o", "roots.o", "roots-gcregs.o", "safepoints.o"}) {
            SafepointRegistry registry = new SafepointRegistry();
            try (Arena arena = Arena.ofShared(); JitHost host = new JitHost()) {
                host.addListener(new RegistryListener(registry));
                for (String symbol : new String[] {"host_poll", "deep_poll_java", "gc_poll_java", "record_entry"}) {
                    host.defineUpcall(symbol, MethodHandles.lookup().findStatic(WalkPlanTest.class, "hostPoll",
                            MethodType.methodType(void.class)), FunctionDescriptor.ofVoid(), arena);
                }
                byte[] elf = Files.readAllBytes(Fixtures.projectRoot().resolve("fixtures/jit/x86_64/" + name));
                host.load(name, MemorySegment.ofArray(elf));
                Frame frame = new Frame();
                for (ObjectTable t : registry.tablesForTest()) {
                    for (int i = 0; i < t.safepointCount(); i++) {
                        assertTrue(registry.lookup(t.spAddress[i], frame));
                        String where = name + " 0x" + Long.toHexString(t.spAddress[i]);
                        long plan = frame.unwindPlan();
                        long step = frame.walkStep();
                        if (frame.frameSize() >= 0) {
                            assertEquals(UnwindPlan.RSP, UnwindPlan.cfaRegister(step), where);
                            assertEquals(frame.frameSize() + 8, UnwindPlan.cfaOffset(step), where);
                            if (UnwindPlan.cfaRegister(plan) == UnwindPlan.RBP) {
                                rbpStepsBySize++;
                            }
                        } else {
                            assertEquals(plan, step, where);
                        }
                        for (int c = 0; c < UnwindPlan.SLOTS; c++) {
                            assertEquals(UnwindPlan.saved(plan, c), UnwindPlan.saved(step, c), where + " slot " + c);
                        }
                        List<Integer> bases = new ArrayList<>();
                        List<Integer> derived = new ArrayList<>();
                        boolean plannable = spSlots(frame, bases, derived);
                        assertEquals(plannable, frame.hasRootPlan(), where);
                        if (frame.hasRootPlan()) {
                            List<Integer> planned = new ArrayList<>();
                            for (int k = 0; k < frame.plannedBaseCount(); k++) {
                                planned.add(frame.plannedBaseOffset(k));
                            }
                            assertEquals(bases, planned, where);
                            List<Integer> plannedDerived = new ArrayList<>();
                            for (int k = 0; k < frame.plannedDerivedCount(); k++) {
                                plannedDerived.add(frame.plannedDerivedOffset(k));
                                plannedDerived.add(frame.plannedDerivedBase(k));
                            }
                            assertEquals(derived, plannedDerived, where);
                            plannedWithRoots += bases.isEmpty() ? 0 : 1;
                        } else {
                            unplanned++;
                        }
                    }
                }
            }
        }
        assertTrue(rbpStepsBySize > 0, "deep-fp.o's frames have an RBP-based CFA and a static size");
        assertTrue(plannedWithRoots > 0, "deep's statepoints keep their four roots in SP slots");
        assertTrue(unplanned > 0, "roots-gcregs.o keeps roots in registers");
    }

    /**
     * The test's own reading of a record: its distinct SP-relative root slots in walk order, or
     * false when a root is elsewhere.
     */
    private static boolean spSlots(Frame frame, List<Integer> bases, List<Integer> derived) {
        if (frame.kind() != SafepointKind.STATEPOINT) {
            return true;
        }
        for (int p = 0; p < frame.pairCount(); p++) {
            int b = frame.base(p);
            int d = frame.derived(p);
            if (frame.kind(b) == LocationKind.CONSTANT || frame.kind(b) == LocationKind.CONSTANT_INDEX) {
                continue;
            }
            if (frame.kind(b) != LocationKind.INDIRECT || frame.register(b) != 7
                    || frame.kind(d) != LocationKind.INDIRECT || frame.register(d) != 7) {
                return false;
            }
            int bi = bases.indexOf(frame.offset(b));
            if (bi < 0) {
                bases.add(frame.offset(b));
                bi = bases.size() - 1;
            }
            if (frame.offset(d) != frame.offset(b) && !contains(derived, frame.offset(d))) {
                derived.add(frame.offset(d));
                derived.add(bi);
            }
        }
        for (int a = 0; a < frame.gcAllocaCount(); a++) {
            int l = frame.gcAlloca(a);
            if (frame.kind(l) != LocationKind.DIRECT || frame.register(l) != 7) {
                return false;
            }
            if (!bases.contains(frame.offset(l))) {
                bases.add(frame.offset(l));
            }
        }
        return true;
    }

    private static boolean contains(List<Integer> pairs, int offset) {
        for (int k = 0; k < pairs.size(); k += 2) {
            if (pairs.get(k) == offset) {
                return true;
            }
        }
        return false;
    }

    /** Repeated pairs and a derived pointer: each slot once, the derived one with its base; constants skipped. */
    @Test
    void rootSlotsAreDeduplicatedWithDerivedPointersAfterTheirBases() throws Exception {
        StackMapBuilder maps = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x1000, 40, 3);
        maps.record(1, 0x10).constant(0).constant(0).constant(0)
                .indirect(7, 16).indirect(7, 16)      // base
                .constant(0).constant(0)              // null: nothing to visit
                .indirect(7, 16).indirect(7, 24)      // derived from it
                .indirect(7, 16).indirect(7, 16)      // the base again
                .indirect(7, 32).indirect(7, 24);     // the derived slot again, from another base: unplannable
        maps.record(2, 0x20).constant(0).constant(0).constant(0)
                .indirect(7, 8).indirect(7, 8).indirect(7, 8).indirect(7, 0).indirect(7, 8).indirect(7, 8);
        maps.record(3, 0x30).constant(0).constant(0).constant(0)
                .indirect(6, -8).indirect(6, -8);     // RBP-relative: the walker resolves it
        SafepointRegistry registry = new SafepointRegistry();
        registry.register(1, "plans", 0x1000, 0x100, StackMapSection.parse(MemorySegment.ofArray(maps.build()),
                ByteOrder.LITTLE_ENDIAN), List.of());
        Frame f = new Frame();
        assertTrue(registry.lookup(0x1010, f));
        assertFalse(f.hasRootPlan(), "a derived slot with two bases is left to the walker, which refuses it");
        assertTrue(registry.lookup(0x1020, f));
        assertTrue(f.hasRootPlan());
        assertEquals(1, f.plannedBaseCount());
        assertEquals(8, f.plannedBaseOffset(0));
        assertEquals(1, f.plannedDerivedCount());
        assertEquals(0, f.plannedDerivedOffset(0));
        assertEquals(0, f.plannedDerivedBase(0));
        assertTrue(registry.lookup(0x1030, f));
        assertFalse(f.hasRootPlan());
        // No .eh_frame: the step is the frame size, every callee-saved register unknown.
        long step = f.walkStep();
        assertEquals(UnwindPlan.RSP, UnwindPlan.cfaRegister(step));
        assertEquals(48, UnwindPlan.cfaOffset(step));
        for (int c = 0; c < UnwindPlan.SLOTS; c++) {
            assertEquals(UnwindPlan.UNDEFINED, UnwindPlan.saved(step, c));
        }
    }

    /** Without .eh_frame a dynamic frame steps through its frame pointer, which also gives the caller's RBP. */
    @Test
    void aDynamicFrameWithoutCfiStepsThroughItsFramePointer() throws Exception {
        StackMapBuilder maps = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x2000, -1L, 1);
        maps.record(1, 0x10).constant(0).constant(0).constant(0);
        SafepointRegistry registry = new SafepointRegistry();
        registry.register(2, "dyn", 0x2000, 0x100, StackMapSection.parse(MemorySegment.ofArray(maps.build()),
                ByteOrder.LITTLE_ENDIAN), List.of());
        Frame f = new Frame();
        assertTrue(registry.lookup(0x2010, f));
        long step = f.walkStep();
        assertEquals(UnwindPlan.RBP, UnwindPlan.cfaRegister(step));
        assertEquals(16, UnwindPlan.cfaOffset(step));
        for (int c = 0; c < UnwindPlan.SLOTS; c++) {
            assertEquals(c == UnwindPlan.slotOf(UnwindPlan.RBP) ? 2 : UnwindPlan.UNDEFINED, UnwindPlan.saved(step, c));
        }
        assertTrue(f.hasRootPlan());
        assertEquals(0, f.plannedBaseCount());
    }
}
