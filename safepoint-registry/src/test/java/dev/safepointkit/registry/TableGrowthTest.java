package dev.safepointkit.registry;

import static dev.safepointkit.registry.SafepointRegistryTest.section;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * How the registry's table grows and sheds removed entries: a chunk per writer call, never a
 * whole rebuild in steady growth, and no growth at all when code is loaded and unloaded again.
 */
class TableGrowthTest {
    private static final int PER_OBJECT = 50;

    private static long start(int object) {
        return 0x100_0000L + object * 0x1000L;
    }

    private static long[] offsets(int n) {
        long[] o = new long[n];
        for (int i = 0; i < n; i++) {
            o[i] = 0x10 + 0x20L * i;
        }
        return o;
    }

    private static void register(SafepointRegistry registry, int object) throws Exception {
        registry.register(object, "object-" + object, start(object), 0x1000, section(start(object), 16, offsets(PER_OBJECT)),
                List.of());
    }

    private static void assertFound(SafepointRegistry registry, Frame frame, int object, int safepoint) {
        long address = start(object) + 0x10 + 0x20L * safepoint;
        assertTrue(registry.lookup(address, frame), "object " + object + " safepoint " + safepoint);
        assertEquals(object, frame.objectKey());
        assertEquals(address, frame.returnAddress());
        assertEquals(1000 + safepoint, frame.safepointId());
    }

    @Test
    void growsAChunkPerRegistrationAndFindsEverySafepointMeanwhile() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        Frame frame = new Frame();
        int replacements = 0;
        int callsWhileReplacing = 0;
        SafepointTable before = registry.tableForTest();
        for (int object = 0; object < 600; object++) {
            int capacityBefore = registry.tableForTest().capacity();
            long copiedBefore = registry.slotsCopiedForTest();
            register(registry, object);
            long copied = registry.slotsCopiedForTest() - copiedBefore;
            if (capacityBefore >= 64 * PER_OBJECT) {
                // Past the first few small tables, no registration copies more than its chunk.
                assertTrue(copied <= 8 * (PER_OBJECT + 32), "registration " + object + " copied " + copied + " slots");
            }
            if (registry.replacingForTest()) {
                callsWhileReplacing++;
            }
            if (registry.tableForTest() != before) {
                replacements++;
                before = registry.tableForTest();
            }
            assertFound(registry, frame, object, PER_OBJECT - 1);
            assertFound(registry, frame, object / 2, object % PER_OBJECT);
        }
        for (int object = 0; object < 600; object++) {
            for (int s = 0; s < PER_OBJECT; s++) {
                assertFound(registry, frame, object, s);
            }
        }
        assertTrue(replacements >= 5, replacements + " replacements");
        assertTrue(callsWhileReplacing > 100, callsWhileReplacing + " registrations while a replacement was being filled");
        assertTrue(registry.tableForTest().capacity() <= 4 * 600 * PER_OBJECT * 2, "capacity " + registry.tableForTest().capacity());
    }

    @Test
    void loadingAndUnloadingAtTheSameAddressesReusesEntriesAndSlots() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        Frame frame = new Frame();
        for (int object = 0; object < 100; object++) {
            register(registry, object);
        }
        // Its first load adds its keys; then let any replacement in progress finish.
        int warmup = 0;
        do {
            register(registry, 100);
            registry.unregister(100);
        } while (registry.replacingForTest() && ++warmup < 1000);
        SafepointTable table = registry.tableForTest();
        int used = table.used();
        long copied = registry.slotsCopiedForTest();
        for (int round = 0; round < 20_000; round++) {
            register(registry, 100);
            assertFound(registry, frame, 100, round % PER_OBJECT);
            assertTrue(registry.unregister(100));
            assertFalse(registry.lookup(start(100) + 0x10, frame));
        }
        assertSame(table, registry.tableForTest(), "the table was replaced");
        assertEquals(used, table.used());
        assertEquals(copied, registry.slotsCopiedForTest());
        assertFound(registry, frame, 42, 7);
    }

    @Test
    void codeLoadedAtNewAddressesShedsItsRetiredEntries() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        Frame frame = new Frame();
        register(registry, 0);
        for (int round = 1; round < 5000; round++) {
            register(registry, round);
            assertFound(registry, frame, round, 3);
            assertTrue(registry.unregister(round));
            assertFalse(registry.lookup(start(round) + 0x10 + 0x20 * 3, frame));
        }
        // Two objects live: retired entries are shed by replacements, so the table stays small.
        assertTrue(registry.tableForTest().capacity() <= 2048, "capacity " + registry.tableForTest().capacity());
        assertFound(registry, frame, 0, 49);
    }

    @Test
    void aFreedSlotGoesToTheNextObjectAndTheOldAddressesMiss() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        Frame frame = new Frame();
        Frame kept = new Frame();
        register(registry, 1);
        register(registry, 2);
        assertFound(registry, kept, 1, 5);
        int slot = slotOf(registry, 1);
        assertTrue(registry.unregister(1));
        register(registry, 3);
        assertEquals(slot, slotOf(registry, 3), "the freed slot was not reused");
        // A Frame from before still shows object 1, whose slot is now object 3's.
        assertEquals(1, kept.objectKey());
        assertEquals(start(1) + 0x10 + 0x20L * 5, kept.returnAddress());
        assertEquals(1005, kept.safepointId());
        assertEquals(16, kept.frameSize());
        for (int s = 0; s < PER_OBJECT; s++) {
            assertFalse(registry.lookup(start(1) + 0x10 + 0x20L * s, frame), "object 1's safepoint " + s);
            assertFound(registry, frame, 3, s);
            assertFound(registry, frame, 2, s);
        }
    }

    @Test
    void aLookupOnAReplacedTableDoesNotAnswerWithTheObjectThatTookTheSlot() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        Frame frame = new Frame();
        register(registry, 1);
        // What a lookup loads before it is preempted: the published objects, then the table.
        ObjectTable[] published = registry.objectsForTest().published();
        SafepointTable old = registry.tableForTest();
        int object = 2;
        while (registry.tableForTest() == old || registry.replacingForTest()) {
            register(registry, object++);
        }
        int slot = slotOf(registry, 1);
        assertTrue(registry.unregister(1));
        // At other addresses, in object 1's slot; the replaced table still has object 1's entries.
        register(registry, object);
        assertEquals(slot, slotOf(registry, object), "the freed slot was not reused");
        for (int s = 0; s < PER_OBJECT; s++) {
            long address = start(1) + 0x10 + 0x20L * s;
            boolean found = old.lookup(address, frame, published, registry.objectsForTest());
            assertFalse(found, "object 1's safepoint " + s + " answered with object " + (found ? frame.objectKey() : -1));
            assertFound(registry, frame, object, s);
        }
    }

    @Test
    void anObjectUnregisteredWhileAReplacementIsFilledIsGoneFromTheReplacement() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        Frame frame = new Frame();
        // Register until an object goes in while a replacement is being filled (so into both
        // tables) and the replacement is still unfinished after it.
        int object = 1;
        int victim = -1;
        while (victim < 0) {
            boolean replacing = registry.replacingForTest();
            register(registry, object++);
            if (replacing && registry.replacingForTest()) {
                victim = object - 1;
            }
        }
        SafepointTable old = registry.tableForTest();
        int slot = slotOf(registry, victim);
        assertTrue(registry.unregister(victim));
        // The next object takes the victim's slot, at other addresses; then the replacement is published.
        int taker = object++;
        register(registry, taker);
        assertEquals(slot, slotOf(registry, taker), "the freed slot was not reused");
        while (registry.tableForTest() == old) {
            register(registry, object++);
        }
        for (int s = 0; s < PER_OBJECT; s++) {
            long address = start(victim) + 0x10 + 0x20L * s;
            boolean found = registry.lookup(address, frame);
            assertFalse(found, "unregistered object " + victim + "'s safepoint " + s + " answered with object "
                    + (found ? frame.objectKey() + " safepoint " + frame.safepointId() : -1));
            assertFound(registry, frame, taker, s);
        }
    }

    private static int slotOf(SafepointRegistry registry, long key) {
        for (ObjectTable t : registry.tablesForTest()) {
            if (t.key == key) {
                return t.slot;
            }
        }
        throw new AssertionError("no object " + key);
    }

}
