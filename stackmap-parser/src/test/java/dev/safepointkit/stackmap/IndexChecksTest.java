package dev.safepointkit.stackmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Every accessor that takes an index refuses one outside its table with an
 * IndexOutOfBoundsException, as its Javadoc says, instead of reading the bytes that follow (the
 * next record, a record's padding or live-outs), which would be well-formed and wrong. The last
 * valid index of each reads its own entry.
 */
class IndexChecksTest {
    private static void refused(Executable read) {
        assertThrows(IndexOutOfBoundsException.class, read);
    }

    @Test
    void everyIndexedReadRefusesAnIndexOutsideItsTable() throws Exception {
        StackMapBuilder b = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(0x1000, 16, 2).function(0x2000, 32, 1)
                .constant(7L << 40);
        b.record(1, 4).constant(11).constant(12).liveOut(3, 8);
        b.record(2, 8).constant(21);
        b.record(3, 12).constant(31).constant(32).constant(33);
        StackMap map = StackMapSection.parse(MemorySegment.ofArray(b.build()), ByteOrder.LITTLE_ENDIAN).stackMaps().getFirst();

        for (int bad : List.of(-1, 2, Integer.MIN_VALUE, Integer.MAX_VALUE)) {
            refused(() -> map.function(bad));
            refused(() -> map.function(bad, new FunctionCursor()));
        }
        assertEquals(0x2000, map.function(1).functionAddress());
        for (int bad : List.of(-1, 1)) {
            refused(() -> map.constant(bad));
        }
        assertEquals(7L << 40, map.constant(0));
        for (int bad : List.of(-1, 3)) {
            refused(() -> map.record(bad));
            refused(() -> map.record(bad, new RecordCursor()));
            refused(() -> map.functionOfRecord(bad));
        }
        assertEquals(3, map.record(2).id());
        assertEquals(1, map.functionOfRecord(2));

        // Record 0: two locations, then its padding and one live-out, then record 1.
        RecordCursor record = map.record(0, new RecordCursor());
        CallSiteRecord view = map.record(0);
        for (int bad : List.of(-1, 2, 3)) {
            refused(() -> record.location(bad, new LocationCursor()));
            refused(() -> view.location(bad));
        }
        assertEquals(12, record.location(1, new LocationCursor()).smallConstant());
        assertEquals(12, view.location(1).smallConstant());
        for (int bad : List.of(-1, 1)) {
            refused(() -> record.liveOut(bad, new LiveOutCursor()));
            refused(() -> view.liveOut(bad));
        }
        assertEquals(3, record.liveOut(0, new LiveOutCursor()).dwarfRegNum());
        // Record 1 has no live-outs: index 0 is already past them.
        RecordCursor second = map.record(1, new RecordCursor());
        refused(() -> second.liveOut(0, new LiveOutCursor()));
        refused(() -> map.record(1).liveOut(0));
        refused(() -> second.location(1, new LocationCursor()));
    }
}
