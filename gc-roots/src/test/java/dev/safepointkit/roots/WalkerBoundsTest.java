package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.registry.FunctionSpan;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What the walk reads again at every frame, also when it reuses the previous frame's step: a
 * recursive dynamic frame's own RBP, a frame pointer that leads below the frame, each run's own
 * saved registers.
 */
class WalkerBoundsTest {
    static final long FOREIGN_RETURN = 0x7777_0000L;
    static final long P1 = 0x10_0000L;
    static final long MOVE = 0x100_0000L;

    private Arena arena;
    private MemorySegment memory;
    private SafepointRegistry registry;

    @BeforeEach
    void setUp() throws Exception {
        arena = Arena.ofConfined();
        memory = arena.allocate(4096, 16);
        registry = new SafepointRegistry();
        // A: frame size 32, one root at SP+16.
        StackMapBuilder a = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x1000, 32, 1);
        a.record(1, 0x10).constant(0).constant(0).constant(0).indirect(7, 16).indirect(7, 16);
        register(1, "a.o", 0x1000, a);
    }

    @AfterEach
    void tearDown() {
        arena.close();
    }

    private void register(long key, String name, long code, StackMapBuilder builder) throws Exception {
        StackMapSection section = StackMapSection.parse(MemorySegment.ofArray(builder.build()), ByteOrder.LITTLE_ENDIAN);
        registry.register(key, name, code, 0x100, section, List.of(new FunctionSpan(name.replace(".o", "_fn"), code, 0x100)));
    }

    private long at(long offset) {
        return memory.address() + offset;
    }

    private void put(long address, long value) {
        memory.set(ValueLayout.JAVA_LONG_UNALIGNED, address - memory.address(), value);
    }

    private long get(long address) {
        return memory.get(ValueLayout.JAVA_LONG_UNALIGNED, address - memory.address());
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
