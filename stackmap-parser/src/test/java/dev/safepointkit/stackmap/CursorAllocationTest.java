package dev.safepointkit.stackmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.testing.StackMapBuilder;
import dev.safepointkit.stackmap.testing.StackMapWalker;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.ByteOrder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Reading every field of a large stack map through cursors allocates nothing, measured by the
 * JVM's per-thread allocation counter around a whole read: not a byte once warm, and less than
 * a byte per record cold; the same through the bulk location and live-out arrays, warm.
 */
class CursorAllocationTest {
    private static final int FUNCTIONS = 64;
    private static final int RECORDS_PER_FUNCTION = 160;

    enum Order {
        LITTLE(ByteOrder.LITTLE_ENDIAN), BIG(ByteOrder.BIG_ENDIAN);

        final ByteOrder order;

        Order(ByteOrder order) {
            this.order = order;
        }
    }

    /** 10,240 records with locations of every kind, and live-outs on every fourth record. */
    private static byte[] largeStackMap(ByteOrder order) {
        StackMapBuilder b = new StackMapBuilder(order);
        for (int c = 0; c < 16; c++) {
            b.constant((1L << 40) + c);
        }
        for (int f = 0; f < FUNCTIONS; f++) {
            b.function(0x10_000L * f, f % 5 == 0 ? FunctionRecord.DYNAMIC_STACK_SIZE : 8L * f, RECORDS_PER_FUNCTION);
            for (int r = 0; r < RECORDS_PER_FUNCTION; r++) {
                StackMapBuilder.Rec rec = b.record((long) f * RECORDS_PER_FUNCTION + r, 4L * r)
                        .constant(r - 80).location(LocationKind.CONSTANT_INDEX, 8, 0, r % 16)
                        .location(LocationKind.REGISTER, 8, r % 17, 0).direct(7, 16 + r).indirect(6, -8 * r);
                if (r % 4 == 0) {
                    rec.liveOut(3, 8).liveOut(12, 16);
                }
            }
        }
        return b.build();
    }

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private static long allocatedBytes() {
        return THREADS.getCurrentThreadAllocatedBytes();
    }

    @ParameterizedTest
    @EnumSource(Order.class)
    void readingEveryFieldThroughCursorsAllocatesNothing(Order o) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            byte[] bytes = largeStackMap(o.order);
            MemorySegment segment = arena.allocate(bytes.length, 8);
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, segment, 0, bytes.length);
            StackMapSection section = StackMapSection.parse(segment, o.order);
            assertEquals(FUNCTIONS * RECORDS_PER_FUNCTION, section.recordCount());
            StackMapWalker.Cursors cursors = new StackMapWalker.Cursors();
            long expected = StackMapWalker.sumEverything(section);

            // The counter itself must be able to see a read that allocates: the views do.
            long before = allocatedBytes();
            StackMapWalker.sumEverything(section);
            long viaViews = allocatedBytes() - before;
            assertTrue(viaViews > section.recordCount() * 16L, "views allocated only " + viaViews + " bytes");

            long cold = measure(section, cursors, expected);
            for (int warm = 0; warm < 200; warm++) {
                assertEquals(expected, StackMapWalker.sumEverything(section, cursors));
            }
            long hot = measure(section, cursors, expected);
            // Cold, the first read links call sites and iterates the list of stack maps with an
            // iterator: a few hundred bytes once, nothing per record.
            assertTrue(cold < section.recordCount(), "bytes allocated reading every field once, cold: " + cold);
            assertEquals(0, hot, "bytes allocated reading every field once, warm");

            // Through the location and live-out arrays: they grow once, on the first read.
            assertEquals(expected, StackMapWalker.sumEverythingThroughArrays(section, cursors));
            for (int warm = 0; warm < 200; warm++) {
                assertEquals(expected, StackMapWalker.sumEverythingThroughArrays(section, cursors));
            }
            long start = allocatedBytes();
            long sum = StackMapWalker.sumEverythingThroughArrays(section, cursors);
            long viaArrays = allocatedBytes() - start;
            assertEquals(expected, sum);
            assertEquals(0, viaArrays, "bytes allocated reading every field once through arrays, warm");

            // Through a location visitor.
            StackMapWalker.LocationSum visitor = new StackMapWalker.LocationSum();
            for (int warm = 0; warm < 200; warm++) {
                assertEquals(expected, StackMapWalker.sumEverythingThroughVisitor(section, cursors, visitor));
            }
            start = allocatedBytes();
            sum = StackMapWalker.sumEverythingThroughVisitor(section, cursors, visitor);
            long viaVisitor = allocatedBytes() - start;
            assertEquals(expected, sum);
            assertEquals(0, viaVisitor, "bytes allocated reading every field once through a location visitor, warm");
        }
    }

    private static long measure(StackMapSection section, StackMapWalker.Cursors cursors, long expected) {
        long before = allocatedBytes();
        long sum = StackMapWalker.sumEverything(section, cursors);
        long allocated = allocatedBytes() - before;
        assertEquals(expected, sum);
        return allocated;
    }
}
