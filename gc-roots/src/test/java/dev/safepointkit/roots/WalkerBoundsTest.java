package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Frames the walker cannot account for must stop the walk before anything moves: a root slot
 * outside the stack or outside its own frame, a frame size that leaves a slot misaligned.
 */
class WalkerBoundsTest extends HandBuiltStack {


    @BeforeEach
    void setUp() throws Exception {
        // A: frame size 32, one root at SP+16.
        StackMapBuilder a = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x1000, 32, 1);
        a.record(1, 0x10).constant(0).constant(0).constant(0).indirect(7, 16).indirect(7, 16);
        register(1, "a.o", 0x1000, a);
    }

    /** A (innermost) called by the 48-byte frame at {@code callerReturn}, called from foreign code. */
    private ThreadStack aUnder(long callerReturn) {
        long slotA = at(64);
        put(slotA, 0x1010);
        put(slotA + 8 + 16, P1);
        long slotB = slotA + 8 + 32;
        put(slotB, callerReturn);
        put(slotB + 8 + 48, FOREIGN_RETURN);
        return new ThreadStack(memory, slotA, slotB + 8 + 48 + 8, SavedRegisters.none());
    }

    // Registration refuses an SP-relative root outside a static-size frame (RootSlotBoundsTest):
    // the walk's own checks are for the frames it alone can bound, those of dynamic size.

    @Test
    void aPlannedRootOutsideTheStackFailsValidationBeforeAnythingMoves() throws Exception {
        // dynA (innermost) and far: dynamic frame size, no .eh_frame, so each frame's CFA is
        // RBP + 16; dynA's root at SP+16 is in its frame, far's at SP+8192 beyond the stack.
        StackMapBuilder dynA = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x6000, -1L, 1);
        dynA.record(6, 0x10).constant(0).constant(0).constant(0).indirect(7, 16).indirect(7, 16);
        register(6, "dynA.o", 0x6000, dynA);
        StackMapBuilder far = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x8000, -1L, 1);
        far.record(8, 0x10).constant(0).constant(0).constant(0).indirect(7, 8192).indirect(7, 8192);
        register(8, "far.o", 0x8000, far);
        long slot = at(64);
        put(slot, 0x6010);
        put(slot + 8 + 16, P1);
        long rbp0 = slot + 8 + 32;
        long rbp1 = rbp0 + 16 + 48;
        put(rbp0, rbp1);
        put(rbp0 + 8, 0x8010);
        put(rbp1, 0);
        put(rbp1 + 8, FOREIGN_RETURN);
        long rbpSave = at(8);
        put(rbpSave, rbp0);
        ThreadStack stack = new ThreadStack(memory, slot, rbp1 + 16, SavedRegisters.none().savedAt(6, rbpSave));
        StoppedWorld world = new StoppedWorld(null, new StoppedWorld.Liveness(), List.of(), List.of(stack), 0, 0, 0);
        RootRelocator relocator = new RootRelocator(old -> old + MOVE);
        assertThrows(StackWalkException.class, () -> world.walkAll(new JitStackWalker(registry), relocator));
        assertEquals(P1, get(at(64) + 8 + 16), "frame 0's root moved before frame 1's root was found outside the stack");
    }

    @Test
    void aRootAtTheFramesOwnReturnAddressIsRefused() throws Exception {
        // far: dynamic frame size, no .eh_frame; its RBP (as the poll saved it) makes its CFA SP+56:
        // SP+48 is its return address into foreign code, not a root.
        StackMapBuilder far = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x8000, -1L, 1);
        far.record(8, 0x10).constant(0).constant(0).constant(0).indirect(7, 48).indirect(7, 48);
        register(8, "far.o", 0x8000, far);
        long slot = at(64);
        put(slot, 0x8010);
        long rbp = slot + 8 + 40;
        put(rbp, 0);
        put(rbp + 8, FOREIGN_RETURN);
        long rbpSave = at(8);
        put(rbpSave, rbp);
        ThreadStack stack = new ThreadStack(memory, slot, rbp + 16, SavedRegisters.none().savedAt(6, rbpSave));
        assertThrows(StackWalkException.class,
                () -> new JitStackWalker(registry).walk(stack, new RootRelocator(old -> old + MOVE)));
        assertEquals(FOREIGN_RETURN, get(stack.entrySp() - 8), "the return address was relocated as a root");
    }

    @Test
    void aFrameSizeThatMisalignsTheCallersSlotIsRefused() throws Exception {
        // odd: frame size 36 without .eh_frame: its caller's return-address slot is SP+36.
        StackMapBuilder odd = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x9000, 36, 1);
        odd.record(9, 0x10).constant(0).constant(0).constant(0);
        register(9, "odd.o", 0x9000, odd);
        long slot = at(64);
        put(slot, 0x9010);
        long callerSlot = slot + 8 + 36;
        put(callerSlot, FOREIGN_RETURN);
        ThreadStack stack = new ThreadStack(memory, slot, callerSlot + 8, SavedRegisters.none());
        assertThrows(StackWalkException.class, () -> new JitStackWalker(registry).validate(stack));
    }

    @Test
    void aMisalignedStepBetweenTwoFramesIsRefused() throws Exception {
        // odd (36 bytes) then odd2 (28 bytes): the slot between them is misaligned, the entry not.
        StackMapBuilder odd = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x9000, 36, 1);
        odd.record(9, 0x10).constant(0).constant(0).constant(0);
        register(9, "odd.o", 0x9000, odd);
        StackMapBuilder odd2 = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0xa000, 28, 1);
        odd2.record(10, 0x10).constant(0).constant(0).constant(0);
        register(10, "odd2.o", 0xa000, odd2);
        long slot = at(64);
        put(slot, 0x9010);
        long between = slot + 8 + 36;
        put(between, 0xa010);
        long callerSlot = between + 8 + 28;
        put(callerSlot, FOREIGN_RETURN);
        ThreadStack stack = new ThreadStack(memory, slot, callerSlot + 8, SavedRegisters.none());
        StackWalkException e = assertThrows(StackWalkException.class, () -> new JitStackWalker(registry).validate(stack));
        assertTrue(e.getMessage().contains("odd_fn") && e.getMessage().contains("not 8-byte aligned"), e.getMessage());
    }

    @Test
    void anUnplannedRootAboveItsFrameIsRefusedBeforeItMoves() throws Exception {
        // mixed: a register root (RBX, saved by the poll) keeps its safepoint unplanned; its
        // RBP-relative root [RBP + 8] is the frame's own return address.
        StackMapBuilder mixed = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0xb000, -1L, 1);
        mixed.record(11, 0x10).constant(0).constant(0).constant(0)
                .location(dev.safepointkit.stackmap.LocationKind.REGISTER, 8, 3, 0)
                .location(dev.safepointkit.stackmap.LocationKind.REGISTER, 8, 3, 0)
                .indirect(6, 8).indirect(6, 8);
        register(11, "mixed.o", 0xb000, mixed);
        long slot = at(64);
        put(slot, 0xb010);
        long rbp = slot + 8 + 32;
        put(rbp, 0);
        put(rbp + 8, FOREIGN_RETURN);
        long rbpSave = at(8);
        put(rbpSave, rbp);
        long rbxSave = at(16);
        put(rbxSave, P1);
        ThreadStack stack = new ThreadStack(memory, slot, rbp + 16,
                SavedRegisters.none().savedAt(6, rbpSave).savedAt(3, rbxSave));
        StackWalkException e = assertThrows(StackWalkException.class,
                () -> new JitStackWalker(registry).walk(stack, new RootRelocator(old -> old + MOVE)));
        assertTrue(e.getMessage().contains("lies outside its frame"), e.getMessage());
        assertEquals(FOREIGN_RETURN, get(rbp + 8), "the return address was relocated as a root");
        assertEquals(P1, get(rbxSave));
    }

    /** {@code fn} (dynamic frame size, no .eh_frame, innermost) whose RBP, as the poll saved it, is {@code rbp}; foreign code above. */
    private ThreadStack dynamicUnder(long returnAddress, long rbp) {
        long slot = at(64);
        put(slot, returnAddress);
        put(rbp, 0);
        put(rbp + 8, FOREIGN_RETURN);
        long rbpSave = at(8);
        put(rbpSave, rbp);
        return new ThreadStack(memory, slot, rbp + 16, SavedRegisters.none().savedAt(6, rbpSave));
    }

    @Test
    void aPlannedRootBelowSpOrMisalignedInADynamicFrameIsRefused() throws Exception {
        StackMapBuilder below = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0xc000, -1L, 1);
        below.record(12, 0x10).constant(0).constant(0).constant(0).indirect(7, -8).indirect(7, -8);
        register(12, "below.o", 0xc000, below);
        StackMapBuilder skew = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0xd000, -1L, 1);
        skew.record(13, 0x10).constant(0).constant(0).constant(0).indirect(7, 4).indirect(7, 4);
        register(13, "skew.o", 0xd000, skew);
        StackWalkException e = assertThrows(StackWalkException.class,
                () -> new JitStackWalker(registry).validate(dynamicUnder(0xc010, at(64) + 8 + 32)));
        assertTrue(e.getMessage().contains("below_fn") && e.getMessage().contains("below its frame"), e.getMessage());
        e = assertThrows(StackWalkException.class,
                () -> new JitStackWalker(registry).validate(dynamicUnder(0xd010, at(64) + 8 + 32)));
        assertTrue(e.getMessage().contains("skew_fn") && e.getMessage().contains("not a multiple of 8"), e.getMessage());
    }

    @Test
    void aMisalignedFramePointerIsNamedAsSuch() throws Exception {
        StackMapBuilder dyn = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x5000, -1L, 1);
        dyn.record(5, 0x10).constant(0).constant(0).constant(0);
        register(5, "dyn.o", 0x5000, dyn);
        long slot = at(64);
        put(slot, 0x5010);
        long rbp = slot + 8 + 36;
        long rbpSave = at(8);
        put(rbpSave, rbp);
        put(slot + 8 + 64, FOREIGN_RETURN);
        ThreadStack stack = new ThreadStack(memory, slot, slot + 8 + 64 + 8, SavedRegisters.none().savedAt(6, rbpSave));
        StackWalkException e = assertThrows(StackWalkException.class, () -> new JitStackWalker(registry).validate(stack));
        assertTrue(e.getMessage().contains("dyn_fn") && e.getMessage().contains("frame pointer 0x" + Long.toHexString(rbp)),
                e.getMessage());
    }

    @Test
    void aFrameThatSavesItsCallersRbpOutsideItselfIsRefused() throws Exception {
        // dyn's RBP is its own return-address slot: its CFA is SP + 8, so its caller (A) starts at
        // SP, and "the caller's RBP at [RBP]" would be dyn's return address.
        StackMapBuilder dyn = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x5000, -1L, 1);
        dyn.record(5, 0x10).constant(0).constant(0).constant(0);
        register(5, "dyn.o", 0x5000, dyn);
        long slot = at(64);
        put(slot, 0x5010);
        long rbpSave = at(8);
        put(rbpSave, slot);
        put(slot + 8, 0x1010);
        put(slot + 8 + 8 + 16, P1);
        put(slot + 8 + 8 + 32, FOREIGN_RETURN);
        ThreadStack stack = new ThreadStack(memory, slot, slot + 8 + 8 + 32 + 8, SavedRegisters.none().savedAt(6, rbpSave));
        StackWalkException e = assertThrows(StackWalkException.class, () -> new JitStackWalker(registry).validate(stack));
        assertTrue(e.getMessage().contains("dyn_fn") && e.getMessage().contains("saves R#6"), e.getMessage());
    }

    @Test
    void recursiveDynamicFramesEachReadTheirOwnFramePointer() throws Exception {
        // dyn: dynamic frame size, no .eh_frame: CFA = RBP + 16, the caller's RBP at [RBP], a root
        // at [RBP - 16]. Two frames of the same safepoint (recursion): the second frame's RBP is
        // the one the first frame saved, so the reused step must read RBP again.
        StackMapBuilder dyn = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x5000, -1L, 1);
        dyn.record(5, 0x10).constant(0).constant(0).constant(0).indirect(6, -16).indirect(6, -16);
        register(5, "dyn.o", 0x5000, dyn);
        long slot = at(64);
        put(slot, 0x5010);
        long rbp0 = at(160);
        long rbp1 = at(320);
        put(rbp0 - 16, P1);
        put(rbp0, rbp1);
        put(rbp0 + 8, 0x5010);
        put(rbp1 - 16, P1 + 16);
        put(rbp1, 0);
        put(rbp1 + 8, FOREIGN_RETURN);
        long rbpSave = at(8);
        put(rbpSave, rbp0);
        ThreadStack stack = new ThreadStack(memory, slot, rbp1 + 16, SavedRegisters.none().savedAt(6, rbpSave));
        assertEquals(2, new JitStackWalker(registry).walk(stack, new RootRelocator(old -> old + MOVE)));
        assertEquals(P1 + MOVE, get(rbp0 - 16));
        assertEquals(P1 + 16 + MOVE, get(rbp1 - 16));
    }

    @Test
    void aFramePointerThatLeadsBelowTheFrameIsAnErrorNamingIt() throws Exception {
        // dyn's RBP, as the poll saved it, points below its own return-address slot: CFA - 8 would
        // be the slot again (the same frame, visited forever) or below it.
        StackMapBuilder dyn = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x5000, -1L, 1);
        dyn.record(5, 0x10).constant(0).constant(0).constant(0);
        register(5, "dyn.o", 0x5000, dyn);
        long slot = at(64);
        put(slot, 0x5010);
        long rbpSave = at(8);
        put(rbpSave, slot - 8);
        put(slot + 200, FOREIGN_RETURN);
        ThreadStack stack = new ThreadStack(memory, slot, slot + 208, SavedRegisters.none().savedAt(6, rbpSave));
        StackWalkException e = assertThrows(StackWalkException.class, () -> new JitStackWalker(registry).validate(stack));
        assertTrue(e.getMessage().contains("is not above this frame's"), e.getMessage());
    }

    @Test
    void eachRunStartsFromTheRegistersItsOwnExitSaved() throws Exception {
        // Run 0: A, without .eh_frame, so nothing is known of its caller's registers. Run 1: reg,
        // whose root is in RBX, saved by run 1's exit: the register map must start again there.
        StackMapBuilder reg = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x4000, 32, 1);
        reg.record(4, 0x10).constant(0).constant(0).constant(0)
                .location(dev.safepointkit.stackmap.LocationKind.REGISTER, 8, 3, 0)
                .location(dev.safepointkit.stackmap.LocationKind.REGISTER, 8, 3, 0);
        register(4, "reg.o", 0x4000, reg);
        put(at(64), 0x1010);
        put(at(64) + 8 + 16, P1);
        put(at(104), FOREIGN_RETURN);
        long rbxSave = at(200);
        put(rbxSave, P1 + 32);
        put(at(400), 0x4010);
        put(at(440), FOREIGN_RETURN);
        ThreadStack stack = new ThreadStack(memory, List.of(new ThreadStack.Run(at(64), at(112), SavedRegisters.none()),
                new ThreadStack.Run(at(400), at(448), SavedRegisters.none().savedAt(3, rbxSave))));
        assertEquals(2, new JitStackWalker(registry).walk(stack, new RootRelocator(old -> old + MOVE)));
        assertEquals(P1 + 32 + MOVE, get(rbxSave));
    }
}
