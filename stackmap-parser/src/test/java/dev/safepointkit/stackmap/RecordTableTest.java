package dev.safepointkit.stackmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Parsing finds each record where it is whatever the sizes of the records before it: runs of
 * equal sizes (where the next offset is predicted from the last size), sizes that change by one
 * location or one live-out (4 to 12 bytes, often 8 after padding), and back again; the record
 * table's counts match the section, and a bad record after a run of equal ones is still found.
 */
class RecordTableTest {
    /** Locations and live-outs of record i: runs of equal records, and changes of every size. */
    private static final int[][] SHAPES = {
        {2, 0}, {2, 0}, {2, 0}, {3, 0}, {3, 0}, {2, 0}, {2, 1}, {2, 1}, {2, 2}, {2, 3}, {0, 0}, {0, 0},
        {1, 0}, {0, 0}, {6, 0}, {6, 0}, {6, 0}, {6, 0}, {5, 0}, {6, 0}, {4, 2}, {4, 2}, {0, 5}, {0, 5},
    };

    private static byte[] section(ByteOrder order, int badRecord) {
        StackMapBuilder b = new StackMapBuilder(order).function(0x4000, 16, SHAPES.length).constant(1L << 40);
        for (int i = 0; i < SHAPES.length; i++) {
            StackMapBuilder.Rec r = b.record(1000 + i, 4L * i);
            for (int l = 0; l < SHAPES[i][0]; l++) {
                if (i == badRecord && l == SHAPES[i][0] - 1) {
                    r.rawLocation(LocationKind.CONSTANT_INDEX_CODE, 8, 0, 1);
                } else {
                    r.direct(7, 100 * i + l);
                }
            }
            for (int o = 0; o < SHAPES[i][1]; o++) {
                r.liveOut(o, 8);
            }
        }
        return b.build();
    }

    @ParameterizedTest
    @EnumSource(MalformedStackMapTest.Order.class)
    void findsEveryRecordWhateverTheSizesBefore(MalformedStackMapTest.Order o) throws Exception {
        StackMap map = StackMapSection.parse(MemorySegment.ofArray(section(o.order, -1)), o.order).stackMaps().get(0);
        map.recheckRecords();
        RecordCursor record = new RecordCursor();
        LocationCursor loc = new LocationCursor();
        LiveOutCursor liveOut = new LiveOutCursor();
        long expectedOffset = 16 + 24 + 8;
        for (int i = 0; i < SHAPES.length; i++) {
            map.record(i, record);
            String where = "record " + i;
            assertEquals(expectedOffset, record.sectionOffset(), where);
            assertEquals(1000 + i, record.id(), where);
            assertEquals(4L * i, record.instructionOffset(), where);
            assertEquals(0, record.flags(), where);
            assertEquals(SHAPES[i][0], record.locationCount(), where);
            assertEquals(SHAPES[i][1], record.liveOutCount(), where);
            for (int l = 0; l < SHAPES[i][0]; l++) {
                assertEquals(100 * i + l, record.location(l, loc).offset(), where);
            }
            for (int l = 0; l < SHAPES[i][1]; l++) {
                assertEquals(l, record.liveOut(l, liveOut).dwarfRegNum(), where);
            }
            long liveOuts = ((16 + 12L * SHAPES[i][0] + 7) & ~7L) + 4;
            expectedOffset += (liveOuts + 4L * SHAPES[i][1] + 7) & ~7L;
        }
        assertEquals(expectedOffset, map.byteSize());
    }

    @ParameterizedTest
    @EnumSource(MalformedStackMapTest.Order.class)
    void findsABadLocationInAnyRecord(MalformedStackMapTest.Order o) {
        for (int bad = 0; bad < SHAPES.length; bad++) {
            if (SHAPES[bad][0] == 0) {
                continue;
            }
            byte[] bytes = section(o.order, bad);
            StackMapFormatException e = assertThrows(StackMapFormatException.class,
                    () -> StackMapSection.parse(MemorySegment.ofArray(bytes), o.order), "bad record " + bad);
            assertEquals("StkMapRecord[" + bad + "].Location[" + (SHAPES[bad][0] - 1) + "].Offset", e.field());
        }
    }
}
