package dev.safepointkit.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * An SP-relative root of a static-size frame must be an aligned slot inside that frame: below SP
 * is the callee's area, SP + frame size is the return address. Registration refuses anything else,
 * naming the object, the function, the return address and the slot.
 */
class RootSlotBoundsTest {
    private final SafepointRegistry registry = new SafepointRegistry();

    /** f, of {@code frameSize}, with one statepoint: the pair ({@code base}, {@code derived}), then the gc-live alloca {@code alloca} if given. */
    private void register(int base, int derived, Integer alloca, long frameSize) throws Exception {
        StackMapBuilder b = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x1000, frameSize, 1);
        StackMapBuilder.Rec r = b.record(1, 0x10).constant(0).constant(0).constant(0).indirect(7, base).indirect(7, derived);
        if (alloca != null) {
            r.direct(7, alloca);
        }
        StackMapSection section = StackMapSection.parse(MemorySegment.ofArray(b.build()), ByteOrder.LITTLE_ENDIAN);
        registry.register(1, "f.o", 0x1000, 0x100, section, List.of(new FunctionSpan("f", 0x1000, 0x100)));
    }

    private String refused(int base, int derived, Integer alloca) {
        return assertThrows(RegistryException.class, () -> register(base, derived, alloca, 48)).getMessage();
    }

    @Test
    void acceptsEveryAlignedSlotOfTheFrame() throws Exception {
        register(0, 40, 32, 48);
        assertEquals(1, registry.safepointCount());
    }

    @Test
    void refusesARootAtTheFramesReturnAddress() {
        String m = refused(48, 48, null);
        assertTrue(m.contains("f.o") && m.contains("function f at 0x1000") && m.contains("return address 0x1010")
                && m.contains("base pointer at [RSP + 48]") && m.contains("SP + 48 is its return address"), m);
    }

    @Test
    void refusesARootPastTheFrame() {
        String m = refused(8, 8192, null);
        assertTrue(m.contains("derived pointer at [RSP + 8192]"), m);
    }

    @Test
    void refusesARootInTheCalleesArea() {
        String m = refused(-8, -8, null);
        assertTrue(m.contains("[RSP + -8]") && m.contains("below the frame's SP"), m);
    }

    @Test
    void refusesAMisalignedRoot() {
        String m = refused(4, 4, null);
        assertTrue(m.contains("[RSP + 4]") && m.contains("not an 8-byte aligned slot"), m);
    }

    @Test
    void refusesAGcLiveAllocaOutsideTheFrame() {
        String m = refused(8, 8, 44);
        assertTrue(m.contains("gc-live alloca at RSP + 44"), m);
        m = refused(8, 8, 48);
        assertTrue(m.contains("gc-live alloca at RSP + 48") && m.contains("return address"), m);
    }

    @Test
    void leavesADynamicFrameToTheWalk() throws Exception {
        register(8192, 8192, null, -1L);
        assertEquals(1, registry.safepointCount());
    }
}
