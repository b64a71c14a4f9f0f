package dev.safepointkit.stackmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Statepoint records read as deopt values, (base, derived) pairs and gc-live allocas. */
class StatepointRecordTest {

    static Stream<String> statepointObjects() {
        return Stream.of("x86_64/O0", "x86_64/O2", "aarch64/O0", "aarch64/O2", "aarch64_be/O0", "aarch64_be/O2")
                .map(dir -> dir + "/statepoints.o");
    }

    /** The statepoints of an object by the name of the function that holds them. */
    private static Map<String, StatepointRecord> byFunction(ObjectStackMaps maps) throws StackMapFormatException {
        Map<String, StatepointRecord> result = new HashMap<>();
        StackMap map = maps.stackMaps().stackMaps().getFirst();
        for (int r = 0; r < map.recordCount(); r++) {
            CallSiteRecord record = map.record(r);
            String fn = maps.functionSymbol(0, map.functionOfRecord(r)).orElseThrow().name();
            result.put(fn, StatepointRecord.of(record));
        }
        return result;
    }

    @ParameterizedTest
    @MethodSource("statepointObjects")
    void readsTheLayoutTheIrAskedFor(String object) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            ObjectStackMaps maps = ObjectStackMaps.read(ElfFile.parse(
                    Fixtures.map(Fixtures.stackMapFixtures().resolve(object), arena))).orElseThrow();
            Map<String, StatepointRecord> sp = byFunction(maps);

            // deopt_and_base: "deopt"(i32 %pc, i64 -5, i64 6442450944), one base used after the call.
            StatepointRecord deopt = sp.get("deopt_and_base");
            assertEquals(2882400000L, deopt.id());
            assertEquals(3, deopt.deoptCount());
            assertEquals(-5, deopt.deopt(1).constantValue());
            assertEquals(LocationKind.CONSTANT_INDEX, deopt.deopt(2).kind());
            assertEquals(6442450944L, deopt.deopt(2).constantValue());
            assertEquals(1, deopt.pairCount());
            assertEquals(0, deopt.gcAllocaCount());
            assertSameSlot(deopt.base(0), deopt.derived(0));

            // live_allocas: three allocas after the pairs, so the GC location count is odd.
            StatepointRecord allocas = sp.get("live_allocas");
            assertEquals(3, allocas.gcAllocaCount());
            assertEquals(1, allocas.pairCount());
            assertEquals(1, (allocas.record().locationCount() - StatepointRecord.LEADING_CONSTANTS) % 2);
            for (int i = 0; i < allocas.gcAllocaCount(); i++) {
                assertEquals(LocationKind.DIRECT, allocas.gcAlloca(i).kind());
            }
            assertEquals(3, java.util.stream.IntStream.range(0, 3).map(i -> allocas.gcAlloca(i).offset()).distinct().count());

            // derived: every pair shares one base; at -O0 each derived pointer has a slot of its own.
            StatepointRecord derived = sp.get("derived");
            assertTrue(derived.pairCount() >= 2, () -> "pairs: " + derived.pairCount());
            for (int i = 1; i < derived.pairCount(); i++) {
                assertSameSlot(derived.base(0), derived.base(i));
            }
            if (object.contains("/O0/")) {
                assertEquals(3, derived.pairCount());
                int distinct = 0;
                for (int i = 0; i < derived.pairCount(); i++) {
                    if (derived.derived(i).offset() != derived.base(i).offset()) {
                        distinct++;
                    }
                }
                assertEquals(2, distinct, "the element and field pointers differ from their base");
            }
            assertEquals(0, derived.callingConvention(), "the C calling convention, as the IR calls");
        }
    }

    private static void assertSameSlot(Location a, Location b) {
        assertEquals(a.kind(), b.kind());
        assertEquals(a.dwarfRegNum(), b.dwarfRegNum());
        if (a.kind() != LocationKind.REGISTER) {
            assertEquals(a.offset(), b.offset());
        }
    }

    @Test
    void gcPointersInCalleeSavedRegistersAreRegisterLocations() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            ObjectStackMaps maps = ObjectStackMaps.read(ElfFile.parse(Fixtures.map(
                    Fixtures.stackMapFixtures().resolve("x86_64/O2/statepoints-gcregs.o"), arena))).orElseThrow();
            StatepointRecord sp = byFunction(maps).get("duplicated");
            assertTrue(sp.pairCount() >= 1);
            for (int i = 0; i < sp.pairCount(); i++) {
                assertEquals(LocationKind.REGISTER, sp.base(i).kind());
                assertEquals(LocationKind.REGISTER, sp.derived(i).kind());
            }
        }
    }

    @Test
    void keepsRepeatedPairsAsWritten() throws Exception {
        StackMapBuilder b = new StackMapBuilder(ByteOrder.BIG_ENDIAN).function(0, 32, 1);
        b.record(5, 40).constant(0).constant(1).constant(1).constant(99)
                .indirect(7, 8).indirect(7, 16)
                .indirect(7, 8).indirect(7, 16)
                .indirect(7, 24).indirect(7, 24)
                .direct(7, 0);
        StatepointRecord sp = StatepointRecord.of(
                StackMapSection.parse(MemorySegment.ofArray(b.build()), ByteOrder.BIG_ENDIAN).stackMaps().getFirst().record(0));
        assertEquals(1, sp.flags());
        assertEquals(1, sp.deoptCount());
        assertEquals(99, sp.deopt(0).constantValue());
        assertEquals(3, sp.pairCount());
        assertEquals(16, sp.derived(1).offset());
        assertEquals(24, sp.base(2).offset());
        assertEquals(1, sp.gcAllocaCount());
        assertEquals(0, sp.gcAlloca(0).offset());
    }

    @Test
    void refusesRecordsWithoutTheStatepointLayout() throws Exception {
        StackMapBuilder noHeader = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0, 8, 1);
        noHeader.record(1, 4).constant(0).indirect(7, 0);
        assertTrue(assertThrows(StackMapFormatException.class, () -> StatepointRecord.of(first(noHeader)))
                .getMessage().contains("at least 3"));

        StackMapBuilder notConstant = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0, 8, 1);
        notConstant.record(1, 4).constant(0).indirect(7, 0).constant(0);
        assertEquals("StkMapRecord[0].Location[1].Type",
                assertThrows(StackMapFormatException.class, () -> StatepointRecord.of(first(notConstant))).field());

        StackMapBuilder deoptTooLarge = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0, 8, 1);
        deoptTooLarge.record(1, 4).constant(0).constant(0).constant(5).constant(1);
        assertThrows(StackMapFormatException.class, () -> StatepointRecord.of(first(deoptTooLarge)));

        StackMapBuilder odd = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0, 8, 1);
        odd.record(1, 4).constant(0).constant(0).constant(0).indirect(7, 0).indirect(7, 8).indirect(7, 16);
        assertTrue(assertThrows(StackMapFormatException.class, () -> StatepointRecord.of(first(odd)))
                .getMessage().contains("not a whole number of pairs"));
    }

    private static CallSiteRecord first(StackMapBuilder b) throws StackMapFormatException {
        return StackMapSection.parse(MemorySegment.ofArray(b.build()), ByteOrder.LITTLE_ENDIAN).stackMaps().getFirst().record(0);
    }
}
