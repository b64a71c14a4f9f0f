package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.registry.FunctionSpan;
import dev.safepointkit.stackmap.LocationKind;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import dev.safepointkit.stackmap.testing.EhFrameBuilder;
import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The walker and the relocator over a stack laid out in off-heap memory exactly as x86-64 JIT
 * frames lay it out, with the frames' stack maps in a registry.
 */
class JitStackWalkerTest extends HandBuiltStack {
    static final long P2 = 0x20_0000L;
    static final long P3 = 0x30_0000L;


    @BeforeEach
    void setUp() throws Exception {
        // A: frame size 32. The derived pair comes before its base's own pair, and repeats.
        StackMapBuilder a = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x1000, 32, 1);
        a.record(1, 0x10).constant(0).constant(0).constant(0)
                .indirect(7, 16).indirect(7, 24)
                .indirect(7, 16).indirect(7, 16)
                .indirect(7, 16).indirect(7, 24)
                .direct(7, 8);
        register(1, "a.o", 0x1000, a);
        // B: frame size 48; a base that is null, and a constant (null) pair.
        StackMapBuilder b = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x2000, 48, 1);
        b.record(2, 0x10).constant(0).constant(0).constant(0)
                .indirect(7, 0).indirect(7, 0)
                .indirect(7, 32).indirect(7, 32)
                .constant(0).constant(0);
        register(2, "b.o", 0x2000, b);
    }

    /** Two JIT frames, A (innermost) called by B, called from a foreign frame. Returns the stack. */
    private ThreadStack twoFrames(SavedRegisters registers) {
        long slotA = at(64);
        put(slotA, 0x1010);
        long spA = slotA + 8;
        put(spA + 8, P3);
        put(spA + 16, P1);
        put(spA + 24, P1 + 40);
        long slotB = spA + 32;
        put(slotB, 0x2010);
        long spB = slotB + 8;
        put(spB, P2);
        put(spB + 32, 0);
        long outer = spB + 48;
        put(outer, FOREIGN_RETURN);
        return new ThreadStack(memory, slotA, outer + 8, registers);
    }

    @Test
    void walksEachJitFrameAndReportsEachRootOnce() throws Exception {
        ThreadStack stack = twoFrames(SavedRegisters.none());
        List<String> seen = new ArrayList<>();
        int frames = new JitStackWalker(registry).walk(stack, (batch, s) -> {
            StringBuilder line = new StringBuilder(batch.frame().functionName() + " sp+" + (batch.sp() - at(72)) + ":");
            for (int i = 0; i < batch.baseCount(); i++) {
                line.append(" base@").append(batch.baseSlot(i) - batch.sp());
            }
            for (int i = 0; i < batch.derivedCount(); i++) {
                line.append(" derived@").append(batch.derivedSlot(i) - batch.sp()).append("<-")
                        .append(batch.baseSlot(batch.derivedBaseIndex(i)) - batch.sp());
            }
            seen.add(line.toString());
        });
        assertEquals(2, frames);
        assertEquals(List.of("a_fn sp+0: base@16 base@8 derived@24<-16", "b_fn sp+40: base@0 base@32"), seen);
    }

    @Test
    void frameValuesAreReadOnlyWhileAFrameIsVisited() throws Exception {
        ThreadStack stack = twoFrames(SavedRegisters.none());
        JitStackWalker walker = new JitStackWalker(registry);
        IllegalStateException before = assertThrows(IllegalStateException.class, () -> walker.frameValue(0));
        assertEquals("frame values are read only while a frame is visited", before.getMessage());
        List<Long> read = new ArrayList<>();
        int[] handle = new int[1];
        walker.walk(stack, (batch, s) -> {
            if (batch.depth() == 1) {
                handle[0] = batch.frame().base(0);
                read.add(walker.frameValue(handle[0]));
            }
        });
        assertEquals(List.of(P2), read, "b_fn's first base, [rsp + 0], read during the visit");
        // After the walk the stack may run again: a handle kept from the visit reads nothing.
        IllegalStateException after = assertThrows(IllegalStateException.class, () -> walker.frameValue(handle[0]));
        assertEquals(before.getMessage(), after.getMessage());
    }

    @Test
    void relocatesDerivedPointersFromOldValuesBeforeAnyBaseMoves() throws Exception {
        ThreadStack stack = twoFrames(SavedRegisters.none());
        RootRelocator relocator = new RootRelocator(old -> old + MOVE);
        new JitStackWalker(registry).walk(stack, relocator);
        long spA = at(72);
        assertEquals(P1 + MOVE, get(spA + 16));
        // new base + (old derived - old base); rebasing on the moved base would give P1 + 40 - MOVE.
        assertEquals(P1 + MOVE + 40, get(spA + 24));
        assertEquals(P3 + MOVE, get(spA + 8), "the gc-live alloca's slot");
        long spB = spA + 40;
        assertEquals(P2 + MOVE, get(spB));
        assertEquals(0, get(spB + 32), "null stays null");
        assertEquals(1, get(at(64)) == 0x1010 ? 1 : 0, "return addresses are not roots");
        assertEquals(5, relocator.relocatedSlots());
    }

    /** {@link #twoFrames} as a stop captures it: belonging to the stop whose liveness is {@code stop}. */
    private ThreadStack twoFramesOfAStop(StoppedWorld.Liveness stop) {
        ThreadStack plain = twoFrames(SavedRegisters.none());
        return new ThreadStack(memory, plain.runs(), stop, "mutator 3 (worker)");
    }

    @Test
    void aWalkDuringWhichItsStopEndsFailsWhenItEnds() {
        // The stop ends while the walk reads (its action returned while another thread walked):
        // what the walk read is not a stopped stack's, so it must not return as if it were.
        StoppedWorld.Liveness stop = new StoppedWorld.Liveness();
        ThreadStack stack = twoFramesOfAStop(stop);
        List<String> visited = new ArrayList<>();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new JitStackWalker(registry).walk(stack,
                (batch, s) -> {
                    visited.add(batch.frame().functionName());
                    stop.end();
                }));
        assertEquals(List.of("a_fn", "b_fn"), visited, "the reads go on; only the end of the walk can tell");
        assertEquals("the stack from 0x" + Long.toHexString(at(64)) + " belongs to a stop that has ended: its thread runs"
                + " again, so it is walked only during the stop's action", e.getMessage());
    }

    @Test
    void aRelocatorWriteAfterItsStopEndedIsRefusedBeforeItWrites() {
        StoppedWorld.Liveness stop = new StoppedWorld.Liveness();
        ThreadStack stack = twoFramesOfAStop(stop);
        RootRelocator relocator = new RootRelocator(old -> old + MOVE);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new JitStackWalker(registry).walk(stack,
                (batch, s) -> {
                    stop.end();  // the thread runs again from here on
                    relocator.visitFrame(batch, s);
                }));
        long spA = at(72);
        assertEquals("mutator 3 (worker): refused a write to its stack at 0x" + Long.toHexString(spA + 16)
                + ": the stop that captured it has ended and the thread runs again", e.getMessage());
        assertEquals(P1, get(spA + 16), "the running thread's slot is untouched");
        assertEquals(P1 + 40, get(spA + 24));
        assertEquals(P3, get(spA + 8));
    }

    @Test
    void aReturnAddressInsideJitCodeWithoutSafepointStopsTheWalk() {
        ThreadStack stack = twoFrames(SavedRegisters.none());
        put(stack.returnAddressSlot(), 0x1004);
        StackWalkException e = assertThrows(StackWalkException.class,
                () -> new JitStackWalker(registry).walk(stack, (b, s) -> { }));
        assertTrue(e.getMessage().contains("0x1004 is inside JIT code (a_fn in a.o) but is not a safepoint"), e.getMessage());
    }

    @Test
    void aCorruptFrameSizeIsAnErrorNotASilentEnd() throws Exception {
        StackMapBuilder huge = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x3000, 1 << 20, 1);
        huge.record(3, 0x10).constant(0).constant(0).constant(0).indirect(7, 0).indirect(7, 0);
        register(3, "huge.o", 0x3000, huge);
        ThreadStack stack = twoFrames(SavedRegisters.none());
        put(stack.returnAddressSlot(), 0x3010);
        List<Integer> visited = new ArrayList<>();
        StackWalkException e = assertThrows(StackWalkException.class,
                () -> new JitStackWalker(registry).walk(stack, (b, s) -> visited.add(b.depth())));
        assertTrue(e.getMessage().contains("beyond the thread's entry SP"), e.getMessage());
        assertEquals(List.of(0), visited, "the frame itself was reported before its caller failed");
    }

    @Test
    void aRegisterRootNeedsTheSavedRegister() throws Exception {
        StackMapBuilder reg = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x4000, 32, 1);
        reg.record(4, 0x10).constant(0).constant(0).constant(0)
                .location(LocationKind.REGISTER, 8, 3, 0).location(LocationKind.REGISTER, 8, 3, 0);
        register(4, "reg.o", 0x4000, reg);
        ThreadStack without = twoFrames(SavedRegisters.none());
        put(without.returnAddressSlot(), 0x4010);
        StackWalkException e = assertThrows(StackWalkException.class,
                () -> new JitStackWalker(registry).walk(without, (b, s) -> { }));
        assertTrue(e.getMessage().contains("a root in register R#3 and no saved value for it from the poll"), e.getMessage());

        // With RBX saved by the poll (below the return address), the root is its save slot.
        long rbxSlot = at(16);
        put(rbxSlot, P2);
        ThreadStack with = twoFrames(SavedRegisters.none().savedAt(3, rbxSlot));
        put(with.returnAddressSlot(), 0x4010);
        new JitStackWalker(registry).walk(with, new RootRelocator(old -> old + MOVE));
        assertEquals(P2 + MOVE, get(rbxSlot));
    }

    @Test
    void aFrameTooLargeForAStepAndWithoutPlanLosesItsCallersRegisters() throws Exception {
        // Frame 0: no .eh_frame and a frame size the step codec cannot hold (the walk's own
        // step from the frame size, which says nothing about registers); frame 1 keeps its root in
        // RBX, which the poll saved for frame 0 only.
        long size = 1 << 20;
        StackMapBuilder huge = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x3000, size, 1);
        huge.record(3, 0x10).constant(0).constant(0).constant(0);
        register(3, "huge.o", 0x3000, huge);
        StackMapBuilder reg = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x4000, 32, 1);
        reg.record(4, 0x10).constant(0).constant(0).constant(0)
                .location(LocationKind.REGISTER, 8, 3, 0).location(LocationKind.REGISTER, 8, 3, 0);
        register(4, "reg.o", 0x4000, reg);
        try (Arena big = Arena.ofConfined()) {
            MemorySegment m = big.allocate(size + 4096, 16);
            long rbxSlot = m.address() + 8;
            long slot0 = m.address() + 64;
            long slot1 = slot0 + 8 + size;
            long outer = slot1 + 8 + 32;
            m.set(ValueLayout.JAVA_LONG, rbxSlot - m.address(), P2);
            m.set(ValueLayout.JAVA_LONG, slot0 - m.address(), 0x3010);
            m.set(ValueLayout.JAVA_LONG, slot1 - m.address(), 0x4010);
            m.set(ValueLayout.JAVA_LONG, outer - m.address(), FOREIGN_RETURN);
            ThreadStack stack = new ThreadStack(m, slot0, outer + 8, SavedRegisters.none().savedAt(3, rbxSlot));
            List<Integer> visited = new ArrayList<>();
            StackWalkException e = assertThrows(StackWalkException.class,
                    () -> new JitStackWalker(registry).walk(stack, (b, s) -> visited.add(b.depth())));
            assertTrue(e.getMessage().startsWith("frame 1 (reg_fn in reg.o, return address 0x4010)"), e.getMessage());
            assertTrue(e.getMessage().contains("a root in register R#3 and no saved value for it (no frame between it and the poll saved it)"),
                    e.getMessage());
            assertEquals(List.of(0), visited);
            assertEquals(P2, m.get(ValueLayout.JAVA_LONG, rbxSlot - m.address()), "the poll's RBX save is untouched");
        }
    }

    @Test
    void aCallerSavedRegisterAboveTheInnermostFrameIsRefusedEvenWhenThePollSavedIt() throws Exception {
        // Frame 1 (at 0x4010) has a root in RAX and a deopt value in RCX (at 0x4020), both
        // caller-saved: lost at its call, whatever the poll saved for frame 0.
        StackMapBuilder reg = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x4000, 48, 2);
        reg.record(4, 0x10).constant(0).constant(0).constant(0)
                .location(LocationKind.REGISTER, 8, 0, 0).location(LocationKind.REGISTER, 8, 0, 0);
        reg.record(5, 0x20).constant(0).constant(0).constant(1).location(LocationKind.REGISTER, 8, 2, 0);
        register(4, "reg.o", 0x4000, reg);
        long raxSlot = at(8);
        long rcxSlot = at(16);
        put(raxSlot, P2);
        put(rcxSlot, 42);
        SavedRegisters saved = SavedRegisters.none().savedAt(0, raxSlot).savedAt(2, rcxSlot);
        ThreadStack stack = twoFrames(saved);
        put(stack.returnAddressSlot() + 8 + 32, 0x4010);   // A's caller is reg_fn
        List<Integer> visited = new ArrayList<>();
        StackWalkException e = assertThrows(StackWalkException.class,
                () -> new JitStackWalker(registry).walk(stack, (b, s) -> visited.add(b.depth())));
        assertTrue(e.getMessage().startsWith("frame 1 (reg_fn in reg.o, return address 0x4010)"), e.getMessage());
        assertTrue(e.getMessage().contains("a root in register R#0 and no saved value for it (a caller-saved register, lost at the call)"),
                e.getMessage());
        assertEquals(List.of(0), visited);

        put(stack.returnAddressSlot() + 8 + 32, 0x4020);
        JitStackWalker walker = new JitStackWalker(registry);
        List<String> values = new ArrayList<>();
        walker.walk(stack, (b, s) -> {
            if (b.depth() == 1) {
                try {
                    values.add("read " + walker.frameValue(b.frame().deopt(0)));
                } catch (StackWalkException x) {
                    values.add(x.getMessage());
                }
            }
        });
        assertEquals(1, values.size());
        assertTrue(values.getFirst().startsWith("frame 1 (reg_fn in reg.o, return address 0x4020)")
                && values.getFirst().contains("a root in register R#2 and no saved value for it (a caller-saved register, lost at the call)"),
                values.getFirst());
    }

    @Test
    void aDynamicFrameWithoutAnUnwindPlanNeedsThePollsFramePointer() throws Exception {
        StackMapBuilder dyn = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x5000, -1L, 1);
        dyn.record(5, 0x10).constant(0).constant(0).constant(0).indirect(6, -16).indirect(6, -16);
        register(5, "dyn.o", 0x5000, dyn);
        // dyn's frame: [rbp - 16] root, [rbp] caller's rbp, [rbp + 8] return address into B.
        long slot = at(64);
        put(slot, 0x5010);
        long rbp = at(200);
        put(rbp - 16, P1);
        put(rbp, 0);
        put(rbp + 8, FOREIGN_RETURN);
        ThreadStack noFp = new ThreadStack(memory, slot, rbp + 16, SavedRegisters.none());
        StackWalkException e = assertThrows(StackWalkException.class,
                () -> new JitStackWalker(registry).walk(noFp, (b, s) -> { }));
        assertTrue(e.getMessage().contains("dyn_fn in dyn.o") && e.getMessage().contains(
                "dynamic frame size, no unwind plan, and no frame pointer is known (no frame below it and no poll saved RBP)"),
                e.getMessage());

        long rbpSave = at(8);
        put(rbpSave, rbp);
        ThreadStack withFp = new ThreadStack(memory, slot, rbp + 16, SavedRegisters.none().savedAt(6, rbpSave));
        assertEquals(1, new JitStackWalker(registry).walk(withFp, new RootRelocator(old -> old + MOVE)));
        assertEquals(P1 + MOVE, get(rbp - 16));
    }

    /** Registers functions inner at {@code code} and outer at {@code code + 0x100}, with their stack maps and CFI instructions. */
    private void registerInnerAndOuter(long key, String name, long code, StackMapBuilder maps, byte[] innerCfi, byte[] outerCfi)
            throws Exception {
        try (Arena eh = Arena.ofConfined()) {
            EhFrame cfi = new EhFrameBuilder().cie().fde(code, 0x100, innerCfi).fde(code + 0x100, 0x100, outerCfi).parse(eh);
            registry.register(key, name, code, 0x200, StackMapSection.parse(MemorySegment.ofArray(maps.build()),
                    ByteOrder.LITTLE_ENDIAN), List.of(new FunctionSpan("inner", code, 0x100),
                    new FunctionSpan("outer", code + 0x100, 0x100)), cfi);
        }
    }

    @Test
    void aPlanCarriesCalleeSavedRegistersToTheCallersRoots() throws Exception {
        // inner (dynamic, CFA = RBP+16, saved the caller's RBX at CFA-24) called by outer (fixed,
        // 24 bytes, CFA = RSP+32, no frame pointer), whose root is in RBX: only inner's save holds it.
        StackMapBuilder maps = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x6000, -1L, 1).function(0x6100, 24, 1);
        maps.record(6, 0x10).constant(0).constant(0).constant(0).indirect(6, -32).indirect(6, -32);
        maps.record(7, 0x10).constant(0).constant(0).constant(0)
                .location(LocationKind.REGISTER, 8, 3, 0).location(LocationKind.REGISTER, 8, 3, 0);
        // inner: push rbp; mov rsp,rbp; push rbx: CFA=RBP+16, RBP at CFA-16, RBX at CFA-24.
        // outer: sub $24,rsp: CFA=RSP+32.
        registerInnerAndOuter(6, "csr.o", 0x6000, maps, EhFrameBuilder.bytes(0x41, 0x0e, 16, 0x86, 2, 0x43, 0x0d, 6, 0x41, 0x83, 3),
                EhFrameBuilder.bytes(0x44, 0x0e, 32));
        long slot = at(64);            // inner's return address into outer
        long rbp = at(120);            // inner's frame pointer: CFA = rbp + 16
        put(slot, 0x6010);
        put(rbp - 32, P1);             // inner's own root
        put(rbp - 8, P2);              // RBX as outer had it, saved by inner at CFA-24
        put(rbp, at(999));             // outer keeps no frame pointer: whatever RBP held
        put(rbp + 8, 0x6110);          // inner's return address into outer, at CFA-8
        // outer's frame: SP = rbp + 16, 24 bytes, then its return address (foreign: the entry).
        put(rbp + 16 + 24, FOREIGN_RETURN);
        long rbpSave = at(16);
        put(rbpSave, rbp);
        ThreadStack stack = new ThreadStack(memory, slot, rbp + 16 + 32, SavedRegisters.none().savedAt(6, rbpSave));
        List<Long> bases = new ArrayList<>();
        assertEquals(2, new JitStackWalker(registry).walk(stack, (b, s) -> {
            for (int i = 0; i < b.baseCount(); i++) {
                bases.add(b.baseSlot(i));
            }
        }));
        assertEquals(List.of(rbp - 32, rbp - 8), bases, "inner's root, then outer's RBX in inner's save slot");
        new JitStackWalker(registry).walk(stack, new RootRelocator(old -> old + MOVE));
        assertEquals(P1 + MOVE, get(rbp - 32));
        assertEquals(P2 + MOVE, get(rbp - 8));

        // Without RBP from the poll the RBP-based CFA cannot be found.
        ThreadStack noFp = new ThreadStack(memory, slot, rbp + 16 + 32, SavedRegisters.none());
        StackWalkException e = assertThrows(StackWalkException.class, () -> new JitStackWalker(registry).validate(noFp));
        assertTrue(e.getMessage().contains("(inner in csr.o") && e.getMessage().contains("its CFA is RBP-based"), e.getMessage());
    }

    @Test
    void aFrameThatSavedOneRegisterHandsItsSaveSlotToTheCaller() throws Exception {
        // inner (fixed, 8 bytes: push rbx, so CFA = RSP+16 and the caller's RBX at CFA-16) called
        // by outer (fixed, 24 bytes, CFA = RSP+32), whose root is in RBX: the one register inner saved.
        StackMapBuilder maps = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x7000, 8, 1).function(0x7100, 24, 1);
        maps.record(8, 0x10).constant(0).constant(0).constant(0);
        maps.record(9, 0x10).constant(0).constant(0).constant(0)
                .location(LocationKind.REGISTER, 8, 3, 0).location(LocationKind.REGISTER, 8, 3, 0);
        registerInnerAndOuter(7, "one.o", 0x7000, maps, EhFrameBuilder.bytes(0x41, 0x0e, 16, 0x83, 2),
                EhFrameBuilder.bytes(0x44, 0x0e, 32));
        long slot = at(64);              // inner's return address into outer
        long spInner = slot + 8;         // = inner's CFA - 16: where its push put outer's RBX
        put(slot, 0x7010);
        put(spInner, P2);
        put(spInner + 8, 0x7110);        // inner's return address into outer, at CFA-8
        long spOuter = spInner + 16;
        put(spOuter + 24, FOREIGN_RETURN);
        ThreadStack stack = new ThreadStack(memory, slot, spOuter + 32, SavedRegisters.none());
        List<String> seen = new ArrayList<>();
        assertEquals(2, new JitStackWalker(registry).walk(stack, (b, s) -> {
            for (int i = 0; i < b.baseCount(); i++) {
                seen.add(b.frame().functionName() + " base@" + (b.baseSlot(i) - spInner));
            }
        }));
        assertEquals(List.of("outer base@0"), seen, "outer's RBX root in inner's one save slot");
        new JitStackWalker(registry).walk(stack, new RootRelocator(old -> old + MOVE));
        assertEquals(P2 + MOVE, get(spInner));
    }

    @Test
    void readsOutsideTheStackAreErrors() {
        ThreadStack stack = twoFrames(SavedRegisters.none());
        ThreadStack truncated = new ThreadStack(memory.asSlice(0, 100), stack.returnAddressSlot(), stack.entrySp(),
                SavedRegisters.none());
        StackWalkException e = assertThrows(StackWalkException.class,
                () -> new JitStackWalker(registry).walk(truncated, (b, s) -> { }));
        assertTrue(e.getMessage().contains("is outside the stack"), e.getMessage());
    }

    @Test
    void aForeignFrameBeforeTheRunsEntryIsAnErrorNamingIt() {
        ThreadStack two = twoFrames(SavedRegisters.none());
        // B's caller is foreign, but the run's entry lies 1,904 bytes further up.
        ThreadStack stack = new ThreadStack(memory, two.returnAddressSlot(), two.entrySp() + 1904, SavedRegisters.none());
        List<Integer> visited = new ArrayList<>();
        StackWalkException e = assertThrows(StackWalkException.class,
                () -> new JitStackWalker(registry).walk(stack, (b, s) -> visited.add(b.depth())));
        assertEquals("frame 2 (run 0): return address 0x77770000 at slot 0x" + Long.toHexString(two.entrySp() - 8)
                + " is foreign code, but the run enters JIT code at slot 0x" + Long.toHexString(two.entrySp() + 1904 - 8)
                + ": a frame of unregistered code, or a call out of JIT code that no exit recorded", e.getMessage());
        assertEquals(List.of(0, 1), visited);
    }

    /** A in run 0 (entered from foreign code at 104), foreign frames, then B in run 1, left through an exit at 400. */
    private List<ThreadStack.Run> twoRuns() {
        long slotA = at(64);
        put(slotA, 0x1010);
        long spA = slotA + 8;
        put(spA + 8, P3);
        put(spA + 16, P1);
        put(spA + 24, P1 + 40);
        put(spA + 32, FOREIGN_RETURN);           // run 0's entry slot, at(104)
        long exitSlot = at(400);
        put(exitSlot, 0x2010);
        long spB = exitSlot + 8;
        put(spB, P2);
        put(spB + 32, 0);
        put(spB + 48, FOREIGN_RETURN);           // run 1's entry slot, at(456)
        return List.of(new ThreadStack.Run(slotA, at(104) + 8, SavedRegisters.none()),
                new ThreadStack.Run(exitSlot, at(456) + 8, SavedRegisters.none()));
    }

    @Test
    void everyRunIsWalkedInnermostFirstSkippingOnlyTheForeignFramesBetweenThem() throws Exception {
        ThreadStack stack = new ThreadStack(memory, twoRuns());
        List<String> seen = new ArrayList<>();
        RootRelocator relocator = new RootRelocator(old -> old + MOVE);
        int frames = new JitStackWalker(registry).walk(stack, (batch, s) -> {
            seen.add(batch.depth() + " " + batch.frame().functionName());
            relocator.visitFrame(batch, s);
        });
        assertEquals(2, frames);
        assertEquals(List.of("0 a_fn", "1 b_fn"), seen);
        assertEquals(P2 + MOVE, get(at(408)), "the outer run's root moved");
        assertEquals(P1 + MOVE + 40, get(at(72) + 24));
    }

    @Test
    void aRunThatDoesNotEndAtItsEntryOrRunsOutOfOrderIsAnError() {
        List<ThreadStack.Run> runs = twoRuns();
        ThreadStack.Run outer = runs.get(1);
        ThreadStack past = new ThreadStack(memory, List.of(runs.get(0),
                new ThreadStack.Run(outer.returnAddressSlot(), outer.entrySp() + 16, SavedRegisters.none())));
        StackWalkException e = assertThrows(StackWalkException.class, () -> new JitStackWalker(registry).walk(past, (b, s) -> { }));
        assertTrue(e.getMessage().startsWith("frame 2 (run 1): return address 0x77770000 at slot 0x" + Long.toHexString(at(456))),
                e.getMessage());
        ThreadStack swapped = new ThreadStack(memory, List.of(runs.get(1), runs.get(0)));
        e = assertThrows(StackWalkException.class, () -> new JitStackWalker(registry).walk(swapped, (b, s) -> { }));
        assertEquals("run 1: its return-address slot 0x" + Long.toHexString(at(64)) + " is not above the entry slot 0x"
                + Long.toHexString(at(456)) + " of the run inside it", e.getMessage());
    }

    @Test
    void aWalkErrorInAnyStackLeavesEveryStackUntouched() throws Exception {
        ThreadStack good = new ThreadStack(memory, twoRuns());
        // A second thread's stack, in memory of its own, whose innermost return address is no safepoint.
        MemorySegment other = arena.allocate(256, 16);
        other.set(ValueLayout.JAVA_LONG, 64, 0x1004);
        ThreadStack bad = new ThreadStack(other, other.address() + 64, other.address() + 200, SavedRegisters.none());
        StoppedWorld world = new StoppedWorld(null, new StoppedWorld.Liveness(), List.of(), List.of(good, bad), 0, 0, 0);
        RootRelocator relocator = new RootRelocator(old -> old + MOVE);
        StackWalkException e = assertThrows(StackWalkException.class,
                () -> world.walkAll(new JitStackWalker(registry), relocator));
        assertTrue(e.getMessage().contains("0x1004 is inside JIT code (a_fn in a.o) but is not a safepoint"), e.getMessage());
        assertEquals(0, relocator.relocatedSlots(), "no root was visited");
        assertEquals(P1, get(at(72) + 16), "the first stack's roots are as they were");
        assertEquals(P2, get(at(408)));
    }

    @Test
    void anEntrySlotInTheMiddleOfARunIsAnError() {
        ThreadStack two = twoFrames(SavedRegisters.none());
        long slotB = two.returnAddressSlot() + 8 + 32;  // A's caller's return address: into B, JIT code
        ThreadStack stack = new ThreadStack(memory, two.returnAddressSlot(), slotB + 8, SavedRegisters.none());
        StackWalkException e = assertThrows(StackWalkException.class, () -> new JitStackWalker(registry).walk(stack, (b, s) -> { }));
        assertEquals("frame 1 (run 0): the run's entry slot 0x" + Long.toHexString(slotB) + " holds a return address into JIT"
                + " code (0x2010, b_fn in b.o), not out of it: an entry slot recorded in the middle of a run", e.getMessage());
    }
}
