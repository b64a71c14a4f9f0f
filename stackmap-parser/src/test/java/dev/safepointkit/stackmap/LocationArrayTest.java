package dev.safepointkit.stackmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link RecordCursor#locations(LocationArray)}, {@link RecordCursor#forEachLocation} and
 * {@link RecordCursor#liveOuts(LiveOutArray)} read, field for field, what the cursors read: in both byte orders, for every number of
 * locations the bulk read treats apart, into arrays that start too small and grow, and that are
 * refilled from records of fewer entries.
 */
class LocationArrayTest {

    enum Order {
        LITTLE(ByteOrder.LITTLE_ENDIAN), BIG(ByteOrder.BIG_ENDIAN);

        final ByteOrder order;

        Order(ByteOrder order) {
            this.order = order;
        }
    }

    static Stream<Path> objects() {
        return Fixtures.objects().stream();
    }

    private static void assertAgree(StackMap map) {
        RecordCursor record = new RecordCursor();
        LocationCursor loc = new LocationCursor();
        LiveOutCursor out = new LiveOutCursor();
        LocationArray locs = new LocationArray(0);
        LiveOutArray outs = new LiveOutArray(0);
        for (int r = 0; r < map.recordCount(); r++) {
            map.record(r, record);
            assertSame(locs, record.locations(locs));
            assertEquals(record.locationCount(), locs.count(), "record " + r);
            for (int l = 0; l < locs.count(); l++) {
                record.location(l, loc);
                String where = "record " + r + " location " + l;
                assertEquals(loc.kindCode(), locs.kindCode(l), where);
                assertEquals(loc.kind(), locs.kind(l), where);
                assertEquals(loc.sizeInBytes(), locs.sizeInBytes(l), where);
                assertEquals(loc.dwarfRegNum(), locs.dwarfRegNum(l), where);
                assertEquals(loc.offset(), locs.offset(l), where);
                assertEquals(loc.smallConstant(), locs.smallConstant(l), where);
                assertEquals(loc.rawConstantField(), locs.rawConstantField(l), where);
                assertEquals(loc.constantIndex(), locs.constantIndex(l), where);
            }
            List<int[]> visited = new ArrayList<>();
            record.forEachLocation((kind, size, reg, field) -> visited.add(new int[] {kind, size, reg, field}));
            assertEquals(record.locationCount(), visited.size(), "record " + r + ", visited");
            for (int l = 0; l < visited.size(); l++) {
                record.location(l, loc);
                int[] v = visited.get(l);
                String where = "record " + r + " location " + l + ", visited";
                assertEquals(loc.kindCode(), v[0], where);
                assertEquals(loc.sizeInBytes(), v[1], where);
                assertEquals(loc.dwarfRegNum(), v[2], where);
                assertEquals(loc.offset(), v[3], where);
            }
            assertSame(outs, record.liveOuts(outs));
            assertEquals(record.liveOutCount(), outs.count(), "record " + r);
            for (int l = 0; l < outs.count(); l++) {
                record.liveOut(l, out);
                assertEquals(out.dwarfRegNum(), outs.dwarfRegNum(l), "record " + r + " live-out " + l);
                assertEquals(out.sizeInBytes(), outs.sizeInBytes(l), "record " + r + " live-out " + l);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("objects")
    void agreesWithTheCursorsOnEveryFixture(Path object) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            ElfFile elf = ElfFile.parse(Fixtures.map(Fixtures.stackMapFixtures().resolve(object), arena));
            for (StackMap map : ObjectStackMaps.read(elf).orElseThrow().stackMaps().stackMaps()) {
                assertAgree(map);
            }
        }
    }

    /**
     * Records of 0 to 7 locations (pairs and an odd last one), some with live-outs, then shorter ones again;
     * register numbers and sizes above 255.
     */
    @ParameterizedTest
    @EnumSource(Order.class)
    void agreesWithTheCursorsForEveryLocationCount(Order o) throws Exception {
        int[] counts = {0, 1, 2, 3, 4, 5, 6, 7, 2, 1, 0, 40, 3};
        StackMapBuilder b = new StackMapBuilder(o.order).function(0x1000, 32, counts.length).constant(1L << 40)
                .constant(-2);
        for (int r = 0; r < counts.length; r++) {
            StackMapBuilder.Rec rec = b.record(r, 4L * r);
            for (int l = 0; l < counts[r]; l++) {
                switch (l % 5) {
                    case 0 -> rec.location(LocationKind.REGISTER, 8, 0x1234 + l, 0);
                    case 1 -> rec.direct(7, -16 * l - 0x10000);
                    // A large aggregate's Indirect: Size has a high byte.
                    case 2 -> rec.location(LocationKind.INDIRECT, 0x1008 + 8 * l, 6, 0x7FFF_0000 + l);
                    case 3 -> rec.constant(-l);
                    default -> rec.location(LocationKind.CONSTANT_INDEX, 8, 0, l % 2);
                }
            }
            for (int l = 0; l < r % 3; l++) {
                rec.liveOut(0x0102 + l, 8 * (l + 1));
            }
        }
        StackMap map = StackMapSection.parse(MemorySegment.ofArray(b.build()), o.order).stackMaps().getFirst();
        assertAgree(map);
    }

    /** What a visitor throws ends the loop at that location and reaches the caller. */
    @ParameterizedTest
    @EnumSource(Order.class)
    void aVisitorsExceptionEndsTheLoopAndReachesTheCaller(Order o) throws Exception {
        StackMapBuilder b = new StackMapBuilder(o.order).function(0, 8, 1);
        b.record(1, 4).constant(1).constant(2).constant(3).constant(4).constant(5);
        StackMap map = StackMapSection.parse(MemorySegment.ofArray(b.build()), o.order).stackMaps().getFirst();
        List<Integer> seen = new ArrayList<>();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> map.record(0, new RecordCursor())
                .forEachLocation((kind, size, reg, field) -> {
                    seen.add(field);
                    if (field == 3) {
                        throw new IllegalStateException("stop at " + field);
                    }
                }));
        assertEquals("stop at 3", e.getMessage());
        assertEquals(List.of(1, 2, 3), seen);
    }

    @ParameterizedTest
    @EnumSource(Order.class)
    void refusesIndicesBeyondTheLastFill(Order o) throws Exception {
        StackMapBuilder b = new StackMapBuilder(o.order).function(0, 8, 2);
        b.record(1, 4).constant(1).constant(2).constant(3).liveOut(3, 8).liveOut(4, 8);
        b.record(2, 8).constant(4);
        StackMap map = StackMapSection.parse(MemorySegment.ofArray(b.build()), o.order).stackMaps().getFirst();
        RecordCursor record = new RecordCursor();
        LocationArray locs = new LocationArray();
        LiveOutArray outs = new LiveOutArray();
        map.record(0, record).locations(locs);
        record.liveOuts(outs);
        map.record(1, record).locations(locs);
        record.liveOuts(outs);
        assertEquals(1, locs.count());
        assertEquals(4, locs.smallConstant(0));
        assertThrows(IndexOutOfBoundsException.class, () -> locs.offset(1));
        assertThrows(IndexOutOfBoundsException.class, () -> locs.kindCode(-1));
        assertEquals(0, outs.count());
        assertThrows(IndexOutOfBoundsException.class, () -> outs.dwarfRegNum(0));
    }
}
