package dev.safepointkit.registry;

import static dev.safepointkit.registry.SafepointRegistryTest.section;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * One cursor filled by lookups and locates in turn: each answer is the last call's, whatever the
 * calls before it found (a safepoint, code without one, code outside any function).
 */
class FrameReuseTest {
    /** Frame size of {@code polls}: too big for a table entry, so frameSize() reads it from the object. */
    private static final long BIG_FRAME = 0x10000;

    /**
     * Registers "high" first, then "low": low's slot (1) differs from its index among the objects
     * by address (0), so a cursor that mixed the two up would name the other object.
     */
    private static SafepointRegistry registry() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        registry.register(2, "high", 0x9000, 0x100, section(0x9000, 32, 0x10), List.of(new FunctionSpan("h", 0x9000, 0x100)));
        // polls [0x4000, 0x4080) has the safepoints; quiet [0x4080, 0x40c0) none; [0x40c0, 0x4100) no function.
        registry.register(1, "low", 0x4000, 0x100, section(0x4000, BIG_FRAME, 0x10, 0x30),
                List.of(new FunctionSpan("polls", 0x4000, 0x80), new FunctionSpan("quiet", 0x4080, 0x40)));
        return registry;
    }

    @Test
    void aNewCursorHasNeitherSafepointNorFunction() {
        Frame frame = new Frame();
        assertFalse(frame.hasSafepoint());
        assertFalse(frame.hasFunction());
    }

    @Test
    void aLookupHitAfterALocateOfAnotherFunctionAnswersItsOwnFunction() throws Exception {
        SafepointRegistry registry = registry();
        Frame frame = new Frame();
        assertTrue(registry.locate(0x4090, frame));
        assertFalse(frame.hasSafepoint());
        assertTrue(frame.hasFunction());
        assertEquals("quiet", frame.functionName());
        assertEquals(1, frame.objectKey());
        assertEquals(Frame.UNKNOWN_FRAME_SIZE, frame.frameSize(), "quiet has no stack map record");

        assertTrue(registry.lookup(0x4030, frame));
        assertHitInPolls(frame, 0x4030, 1001);
    }

    /** Everything a cursor answers after a lookup hit at {@code returnAddress} in polls, safepoint {@code id}. */
    private static void assertHitInPolls(Frame frame, long returnAddress, long id) {
        assertTrue(frame.hasSafepoint());
        assertTrue(frame.hasFunction());
        assertEquals("polls", frame.functionName());
        assertEquals(0x4000, frame.functionStart());
        assertEquals(0x80, frame.functionSize());
        assertEquals(BIG_FRAME, frame.frameSize());
        assertEquals(1, frame.objectKey());
        assertEquals(returnAddress, frame.returnAddress());
        assertEquals(id, frame.safepointId());
    }

    @Test
    void aLocateOutsideAnyFunctionAfterALookupHitHasNeither() throws Exception {
        SafepointRegistry registry = registry();
        Frame frame = new Frame();
        assertTrue(registry.lookup(0x9010, frame));
        assertEquals(2, frame.objectKey());
        assertTrue(registry.locate(0x40d0, frame));
        assertFalse(frame.hasSafepoint());
        assertFalse(frame.hasFunction());
        assertEquals(1, frame.objectKey());
        assertEquals("low", frame.objectName());

        assertTrue(registry.lookup(0x4010, frame), "and a hit after that is whole again");
        assertHitInPolls(frame, 0x4010, 1000);
    }

    @Test
    void aLocateAtAReturnAddressFindsTheSafepointAfterALocateWithout() throws Exception {
        SafepointRegistry registry = registry();
        Frame frame = new Frame();
        assertTrue(registry.locate(0x4090, frame));
        assertTrue(registry.locate(0x4010, frame));
        assertTrue(frame.hasSafepoint());
        assertEquals("polls", frame.functionName());
        assertEquals(BIG_FRAME, frame.frameSize());
        assertEquals(0x4010, frame.returnAddress());
        assertTrue(registry.locate(0x4020, frame));
        assertFalse(frame.hasSafepoint(), "inside polls, between its safepoints");
        assertEquals("polls", frame.functionName());
        assertEquals(BIG_FRAME, frame.frameSize());
    }
}
