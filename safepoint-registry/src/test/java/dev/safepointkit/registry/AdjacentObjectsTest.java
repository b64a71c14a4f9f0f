package dev.safepointkit.registry;

import static dev.safepointkit.registry.SafepointRegistryTest.section;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A return address may equal an object's code end, which is where the next object's code may
 * start: two registered objects must not then share one table entry.
 */
class AdjacentObjectsTest {
    @Test
    void aSafepointAtTheCodeEndOfOneObjectAndTheStartOfTheNextIsRefusedAndTheFirstKeepsIt() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        Frame frame = new Frame();
        registry.register(1, "a", 0x1000, 0x100, section(0x1000, 16, 0x100), List.of());
        RegistryException e = assertThrows(RegistryException.class,
                () -> registry.register(2, "b", 0x1100, 0x100, section(0x1100, 32, 0x0), List.of()));
        assertTrue(e.getMessage().startsWith("b: its safepoint at 0x1100") && e.getMessage().contains("object a (key 1)"),
                e.getMessage());
        assertEquals(1, registry.objectCount(), "the refused registration changed nothing");
        assertTrue(registry.lookup(0x1100, frame), "object a's safepoint at its code end is gone");
        assertEquals(1, frame.objectKey());
    }

    @Test
    void theSameHoldsTheOtherWayRound() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        Frame frame = new Frame();
        registry.register(2, "b", 0x1100, 0x100, section(0x1100, 32, 0x0), List.of());
        RegistryException e = assertThrows(RegistryException.class,
                () -> registry.register(1, "a", 0x1000, 0x100, section(0x1000, 16, 0x100), List.of()));
        assertTrue(e.getMessage().contains("object b (key 2)"), e.getMessage());
        assertTrue(registry.lookup(0x1100, frame));
        assertEquals(2, frame.objectKey());
        assertTrue(registry.unregister(2));
        registry.register(1, "a", 0x1000, 0x100, section(0x1000, 16, 0x100), List.of());
        assertTrue(registry.lookup(0x1100, frame), "once b is gone, a may have the address");
        assertEquals(1, frame.objectKey());
    }
}
