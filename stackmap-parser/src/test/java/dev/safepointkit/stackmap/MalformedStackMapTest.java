package dev.safepointkit.stackmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Malformed sections are refused with a {@link StackMapFormatException} naming the byte offset
 * and the field: never an IndexOutOfBoundsException, an OutOfMemoryError or a hang.
 */
class MalformedStackMapTest {

    enum Order {
        LITTLE(ByteOrder.LITTLE_ENDIAN), BIG(ByteOrder.BIG_ENDIAN);

        final ByteOrder order;

        Order(ByteOrder order) {
            this.order = order;
        }
    }

    private static StackMapFormatException refuse(byte[] section, ByteOrder order) {
        return assertThrows(StackMapFormatException.class,
                () -> StackMapSection.parse(MemorySegment.ofArray(section), order));
    }

    private static StackMapBuilder oneRecord(ByteOrder order) {
        StackMapBuilder b = new StackMapBuilder(order).function(0x1000, 16, 1).constant(1L << 40);
        b.record(7, 12).constant(0).constant(0).constant(0).indirect(7, 8).indirect(7, 16).liveOut(3, 8);
        return b;
    }

    static Stream<Path> fixtureSections() {
        return Stream.of("x86_64/O2/statepoints.o", "x86_64/O0/stackmaps.o", "aarch64_be/O2/patchpoints.o",
                "linked/x86_64/libpair.so").map(Path::of);
    }

    @ParameterizedTest
    @MethodSource("fixtureSections")
    void rejectsTruncationAtEveryByteOfARealSection(Path fixture) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            ElfFile elf = ElfFile.parse(Fixtures.map(Fixtures.stackMapFixtures().resolve(fixture), arena));
            MemorySegment section = ObjectStackMaps.read(elf).orElseThrow().stackMaps().segment();
            StackMapSection whole = StackMapSection.parse(section, elf.byteOrder());
            long firstEnd = whole.stackMaps().getFirst().byteSize();
            for (long length = 0; length < section.byteSize(); length++) {
                MemorySegment cut = section.asSlice(0, length);
                if (length == firstEnd) {
                    // A cut exactly between two concatenated stack maps leaves a valid section.
                    assertEquals(1, StackMapSection.parse(cut, elf.byteOrder()).stackMaps().size());
                    continue;
                }
                final long l = length;
                StackMapFormatException e = assertThrows(StackMapFormatException.class,
                        () -> StackMapSection.parse(cut, elf.byteOrder()), () -> "cut at " + l);
                assertTrue(e.offset() <= length, () -> "error offset " + e.offset() + " beyond cut " + l);
                assertTrue(e.getMessage().contains(e.field()), e::getMessage);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Order.class)
    void rejectsAnotherVersionNamingIt(Order o) {
        StackMapFormatException e = refuse(oneRecord(o.order).version(2).build(), o.order);
        assertEquals(0, e.offset());
        assertEquals("Header.Version", e.field());
        assertTrue(e.getMessage().contains("version 2"), e.getMessage());
    }

    @ParameterizedTest
    @EnumSource(Order.class)
    void rejectsHugeCountsWithoutAllocatingForThem(Order o) {
        StackMapFormatException functions = refuse(oneRecord(o.order).numFunctions(0xFFFF_FFFFL).build(), o.order);
        assertEquals("Header.NumFunctions", functions.field());
        assertEquals(4, functions.offset());
        StackMapFormatException constants = refuse(oneRecord(o.order).numConstants(0xFFFF_FFFFL).build(), o.order);
        assertEquals("Header.NumConstants", constants.field());
        assertEquals(8, constants.offset());
        StackMapFormatException records = refuse(oneRecord(o.order).numRecords(0xFFFF_FFFFL).build(), o.order);
        assertEquals("Header.NumRecords", records.field());
        assertEquals(12, records.offset());
    }

    @ParameterizedTest
    @EnumSource(Order.class)
    void rejectsLocationAndLiveOutCountsThatOverflowTheSection(Order o) {
        StackMapBuilder locations = oneRecord(o.order);
        locations.record(8, 20).numLocationsOverride = 0xFFFF;
        locations.function(0x2000, 8, 1);
        StackMapFormatException e = refuse(locations.build(), o.order);
        assertEquals("StkMapRecord[1].NumLocations", e.field());

        StackMapBuilder liveOuts = oneRecord(o.order);
        liveOuts.record(8, 20).numLiveOutsOverride = 0xFFFF;
        liveOuts.function(0x2000, 8, 1);
        assertEquals("StkMapRecord[1].NumLiveOuts", refuse(liveOuts.build(), o.order).field());
    }

    @ParameterizedTest
    @EnumSource(Order.class)
    void rejectsRecordCountsThatDisagreeWithNumRecords(Order o) {
        StackMapBuilder tooMany = new StackMapBuilder(o.order).function(0, 8, -1L);
        tooMany.record(1, 4);
        StackMapFormatException e = refuse(tooMany.build(), o.order);
        assertEquals("StkSizeRecord[0].RecordCount", e.field());
        assertEquals(16 + 16, e.offset());

        StackMapBuilder tooFew = new StackMapBuilder(o.order).function(0, 8, 1);
        tooFew.record(1, 4);
        tooFew.record(2, 8);
        assertEquals("Header.NumRecords", refuse(tooFew.build(), o.order).field());
    }

    @ParameterizedTest
    @EnumSource(Order.class)
    void rejectsUnknownLocationKindAtItsOffset(Order o) {
        StackMapBuilder b = new StackMapBuilder(o.order).function(0, 8, 1);
        b.record(1, 4).constant(5).rawLocation(9, 8, 0, 0);
        StackMapFormatException e = refuse(b.build(), o.order);
        assertEquals("StkMapRecord[0].Location[1].Type", e.field());
        // header 16, one function 24, record header 16, one location 12
        assertEquals(16 + 24 + 16 + 12, e.offset());
    }

    @ParameterizedTest
    @EnumSource(Order.class)
    void rejectsConstantIndexOutsideTheTable(Order o) {
        StackMapBuilder b = new StackMapBuilder(o.order).function(0, 8, 1).constant(1L << 33);
        b.record(1, 4).location(LocationKind.CONSTANT_INDEX, 8, 0, 0).location(LocationKind.CONSTANT_INDEX, 8, 0, 1);
        StackMapFormatException e = refuse(b.build(), o.order);
        assertEquals("StkMapRecord[0].Location[1].Offset", e.field());
        assertTrue(e.getMessage().contains("constant index 1"), e.getMessage());
    }

    /**
     * Validation reads locations four at a time (two pairs, three words per pair), then a last
     * pair, then a last odd one on its own: a bad Type or an out-of-range ConstantIndex is found
     * at each of those positions, in records of 1 to 9 locations (every mix of steps, pair and odd
     * one), and after a valid record.
     */
    @ParameterizedTest
    @EnumSource(Order.class)
    void rejectsABadLocationAtEveryPositionOfTheRecord(Order o) {
        int[][] bad = {{0, 0}, {6, 0}, {255, 0}, {LocationKind.CONSTANT_INDEX_CODE, 1}, {LocationKind.CONSTANT_INDEX_CODE, -1}};
        for (int count = 1; count <= 9; count++) {
            for (int at = 0; at < count; at++) {
                for (int[] kindAndField : bad) {
                    StackMapBuilder b = new StackMapBuilder(o.order).function(0, 8, 2).constant(1L << 33);
                    b.record(1, 4).location(LocationKind.CONSTANT_INDEX, 8, 0, 0).constant(7).constant(-7);
                    StackMapBuilder.Rec r = b.record(2, 8);
                    for (int i = 0; i < count; i++) {
                        if (i == at) {
                            r.rawLocation(kindAndField[0], 8, 0, kindAndField[1]);
                        } else {
                            r.location(LocationKind.CONSTANT_INDEX, 8, 0, 0);
                        }
                    }
                    String where = count + " locations, bad at " + at + ", kind " + kindAndField[0];
                    StackMapFormatException e = assertThrows(StackMapFormatException.class,
                            () -> StackMapSection.parse(MemorySegment.ofArray(b.build()), o.order), where);
                    String field = kindAndField[0] == LocationKind.CONSTANT_INDEX_CODE ? "Offset" : "Type";
                    assertEquals("StkMapRecord[1].Location[" + at + "]." + field, e.field(), where);
                }
            }
        }
    }

    @Test
    void rejectsEmptyAndGarbageTails() {
        refuse(new byte[0], ByteOrder.LITTLE_ENDIAN);
        byte[] one = oneRecord(ByteOrder.LITTLE_ENDIAN).build();
        byte[] tail = StackMapBuilder.concat(one, new byte[] {3, 0, 0, 0});
        StackMapFormatException e = refuse(tail, ByteOrder.LITTLE_ENDIAN);
        assertEquals(one.length, e.offset());
    }

    @Test
    void acceptsZeroPaddingAfterTheLastStackMap() throws Exception {
        byte[] one = oneRecord(ByteOrder.LITTLE_ENDIAN).build();
        StackMapSection s = StackMapSection.parse(MemorySegment.ofArray(StackMapBuilder.concat(one, new byte[24])),
                ByteOrder.LITTLE_ENDIAN);
        assertEquals(1, s.stackMaps().size());
    }

    @ParameterizedTest
    @EnumSource(Order.class)
    void readsConcatenatedStackMapsInEitherOrder(Order o) throws Exception {
        byte[] first = oneRecord(o.order).build();
        StackMapBuilder second = new StackMapBuilder(o.order).function(0x5000, -1L, 2).function(0x6000, 32, 0);
        second.record(100, 4).direct(6, -16);
        second.record(101, 9).constant(-3);
        StackMapSection s = StackMapSection.parse(MemorySegment.ofArray(StackMapBuilder.concat(first, second.build())), o.order);
        assertEquals(2, s.stackMaps().size());
        StackMap m = s.stackMaps().get(1);
        assertEquals(first.length, m.sectionOffset());
        assertEquals(0x5000, m.function(0).functionAddress());
        assertTrue(m.function(0).hasDynamicStackSize());
        assertEquals(0, m.function(1).recordCount());
        assertEquals(0, m.functionOfRecord(1));
        assertEquals(-16, m.record(0).location(0).offset());
        assertEquals(-3, m.record(1).location(0).constantValue());
        assertEquals(4294967293L, m.record(1).location(0).rawConstantField());
        assertEquals(101, m.function(0).record(1).id());
        assertEquals(3, s.recordCount());
        // The first map's views still read its own bytes.
        assertEquals(1L << 40, s.stackMaps().get(0).constant(0));
        assertEquals(3, s.stackMaps().get(0).record(0).liveOut(0).dwarfRegNum());
    }

    @Test
    void fieldsAreReadInPlaceWithoutCopying() throws Exception {
        byte[] bytes = oneRecord(ByteOrder.LITTLE_ENDIAN).build();
        MemorySegment segment = MemorySegment.ofArray(bytes);
        StackMap map = StackMapSection.parse(segment, ByteOrder.LITTLE_ENDIAN).stackMaps().getFirst();
        // Overwrite the record ID after parsing: a zero-copy view sees the new value.
        long idOffset = 16 + 24 + 8;
        segment.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), idOffset, 4242L);
        assertEquals(4242L, map.record(0).id());
    }
}
