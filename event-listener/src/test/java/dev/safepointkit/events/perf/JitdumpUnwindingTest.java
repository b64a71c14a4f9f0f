package dev.safepointkit.events.perf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The object layout's choices, on made-up objects (addresses only: nothing is mapped there).
 * PerfListenersTest (jit-host) checks the records of real loaded objects as perf reads them.
 */
class JitdumpUnwindingTest {
    private static final long PAGE = 4096;
    private static final long TEXT = 0x7f00_0001_0000L;
    /** Call frame instructions: the CIE's (def_cfa rsp+8, rip at cfa-8), then each FDE's (advance 1, cfa offset 16). */
    private static final MemorySegment CFI = MemorySegment.ofArray(new byte[] {0x0c, 0x07, 0x08, (byte) 0x90, 0x01, 0x41, 0x0e, 0x10});
    private static final EhFrame.Cie CIE = new EhFrame.Cie(0, 1, -8, 16, 0x1b, 0xff, true, false, 0, 5);

    /** An object with a text section of {@code textSize} bytes at TEXT and its .eh_frame on the next page. */
    private static LoadedObject object(long textSize, long ehFrameSize) {
        return new LoadedObject(1, "made-up.o", List.of(new LoadedSection(".text", TEXT, textSize, true, false),
                new LoadedSection(".eh_frame", TEXT + ((textSize + PAGE - 1) & -PAGE), ehFrameSize, false, false)),
                List.of(), Optional.empty(), Optional.empty());
    }

    private static List<EhFrame.Fde> fdes(long[] starts, long[] sizes) {
        EhFrame.Fde[] fdes = new EhFrame.Fde[starts.length];
        for (int i = 0; i < starts.length; i++) {
            fdes[i] = new EhFrame.Fde(0x18 + 0x18L * i, CIE, TEXT + starts[i], sizes[i], 5, 8);
        }
        return List.of(fdes);
    }

    @Test
    void everyAlignedFunctionGetsTheObjectsFdesAtOneAddressPastItsCode() throws Exception {
        long[] starts = {0, 0x40, 0x80};
        long[] sizes = {0x39, 0x33, 0x0b};
        List<EhFrame.Fde> fdes = fdes(starts, sizes);
        JitdumpUnwinding.ObjectLayout layout = JitdumpUnwinding.objectLayout(object(0x8b, 0x70), CFI, fdes, PAGE,
                JitdumpUnwinding.PADDING_BUDGET);
        assertNotNull(layout);
        assertEquals(TEXT + 0x90 + 16, layout.ehFrameAddress(), "the code's end rounded up to 8, then room for a padding CIE");
        long header = -1;
        for (int i = 0; i < starts.length; i++) {
            long address = TEXT + starts[i];
            JitdumpUnwinding.Data data = layout.forFunction(address, sizes[i]);
            assertNotNull(data, "function " + i);
            long placed = address + JitdumpUnwinding.ehFrameOffset(sizes[i]);   // where perf puts the record's data
            int padding = (int) (layout.ehFrameAddress() - placed);
            assertArrayEquals(layout.shared().bytes(), Arrays.copyOfRange(data.bytes(), padding, data.bytes().length),
                    "function " + i + ": the shared bytes at the shared address");
            assertEquals(JitdumpUnwinding.EH_FRAME_HDR_FIELDS + 3 * JitdumpUnwinding.EH_FRAME_HDR_ENTRY, data.hdrSize());
            long hdr = placed + data.bytes().length - data.hdrSize();
            if (i == 0) {
                header = hdr;
            }
            assertEquals(header, hdr, "function " + i + ": the header at the same address");
            // The whole .eh_frame as this function's file holds it: the padding CIE, then the CIE and three FDEs.
            int ehFrameSize = data.bytes().length - data.hdrSize();
            EhFrame parsed = EhFrame.parse(MemorySegment.ofArray(Arrays.copyOf(data.bytes(), ehFrameSize)), placed);
            assertEquals(3, parsed.fdes().size(), "function " + i);
            ByteBuffer table = ByteBuffer.wrap(data.bytes(), ehFrameSize, data.hdrSize()).slice().order(ByteOrder.LITTLE_ENDIAN);
            assertEquals(3, table.getInt(8), "fde_count");
            assertEquals(layout.ehFrameAddress(), hdr + 4 + table.getInt(4), "eh_frame_ptr: the shared records, the same in every file");
            for (int j = 0; j < starts.length; j++) {
                EhFrame.Fde fde = parsed.fdes().get(j);
                assertEquals(TEXT + starts[j], fde.pcBegin(), "function " + i + "'s copy of FDE " + j);
                assertEquals(sizes[j], fde.pcRange());
                assertEquals(fde.pcBegin(), hdr + table.getInt(12 + 8 * j), "table entry " + j);
                assertEquals(placed + fde.offset(), hdr + table.getInt(16 + 8 * j), "table entry " + j + "'s FDE");
            }
        }
    }

    @Test
    void aFunctionOffAnEightByteBoundaryGetsItsOwnFdeAlone() {
        List<EhFrame.Fde> fdes = fdes(new long[] {0, 0x44, 0x60}, new long[] {0x40, 0x0c, 0x20});
        JitdumpUnwinding.ObjectLayout layout = JitdumpUnwinding.objectLayout(object(0x80, 0x50), CFI, fdes, PAGE,
                JitdumpUnwinding.PADDING_BUDGET);
        assertNotNull(layout.forFunction(TEXT, 0x40));
        assertNotNull(layout.forFunction(TEXT + 0x60, 0x20));
        // perf would put its data at TEXT + 0x44 + 0x10, four bytes off every 8-byte step to the
        // shared address (and its header off the 4-byte boundary perf's file gives it).
        assertNull(layout.forFunction(TEXT + 0x44, 0x0c));
    }

    @Test
    void theBudgetLeavesOutTheFunctionsFurthestFromTheEnd() {
        long[] starts = {0, 0x1000, 0x2000};
        long[] sizes = {0x100, 0x100, 0x100};
        List<EhFrame.Fde> fdes = fdes(starts, sizes);
        JitdumpUnwinding.ObjectLayout all = JitdumpUnwinding.objectLayout(object(0x2100, 0x70), CFI, fdes, PAGE, 0x10000);
        for (int i = 0; i < 3; i++) {
            assertNotNull(all.forFunction(TEXT + starts[i], sizes[i]), "function " + i + " within a 64 KiB budget");
        }
        // The last two need about 0x110 + 0x1110 bytes plus the shared data twice; the first another 0x2110.
        JitdumpUnwinding.ObjectLayout some = JitdumpUnwinding.objectLayout(object(0x2100, 0x70), CFI, fdes, PAGE, 0x2000);
        assertNull(some.forFunction(TEXT, sizes[0]));
        assertNotNull(some.forFunction(TEXT + starts[1], sizes[1]));
        assertNotNull(some.forFunction(TEXT + starts[2], sizes[2]));
    }

    @Test
    void noObjectLayoutWhenItWouldReachPastTheObjectsLastPage() {
        // Code to 16 bytes before a page end, and no other section: the shared data would start
        // on the next page, which may hold another object's code.
        List<EhFrame.Fde> fdes = fdes(new long[] {0}, new long[] {PAGE - 16});
        LoadedObject codeOnly = new LoadedObject(1, "made-up.o", List.of(new LoadedSection(".text", TEXT, PAGE - 16, true, false)),
                List.of(), Optional.empty(), Optional.empty());
        assertNull(JitdumpUnwinding.objectLayout(codeOnly, CFI, fdes, PAGE, JitdumpUnwinding.PADDING_BUDGET));
        assertNotNull(JitdumpUnwinding.objectLayout(object(PAGE - 16, 0x40), CFI, fdes, PAGE, JitdumpUnwinding.PADDING_BUDGET),
                "with the .eh_frame's page after it, the data fits");
    }

    @Test
    void theSharedDataLiesPastTheDataOfALastFunctionOffAnEightByteBoundary() {
        // llc packs a minsize function at 1-byte alignment: the last one starts at 0x8b, ends at 0x97.
        long[] starts = {0, 0x40, 0x80, 0x8b};
        long[] sizes = {0x39, 0x33, 0x0b, 0x0c};
        List<EhFrame.Fde> fdes = fdes(starts, sizes);
        JitdumpUnwinding.ObjectLayout layout = JitdumpUnwinding.objectLayout(object(0x97, 0x90), CFI, fdes, PAGE,
                JitdumpUnwinding.PADDING_BUDGET);
        assertNotNull(layout);
        assertNull(layout.forFunction(TEXT + 0x8b, 0x0c), "the last function gets its own FDE alone");
        // perf maps that data at the last function's rounded end; loaded last, it wins there.
        long ownEnd = TEXT + 0x98 + JitdumpUnwinding.build(CFI, fdes.get(3), 0x0c).bytes().length;
        assertTrue(ownEnd > TEXT + 0x98 + JitdumpUnwinding.MIN_PADDING, "without the fix they would overlap");
        assertTrue(layout.ehFrameAddress() >= ownEnd, "shared data at 0x" + Long.toHexString(layout.ehFrameAddress() - TEXT)
                + ", the last function's own data ends at 0x" + Long.toHexString(ownEnd - TEXT));
        assertEquals(0, layout.ehFrameAddress() & 7);
        for (int i = 0; i < 3; i++) {
            JitdumpUnwinding.Data data = layout.forFunction(TEXT + starts[i], sizes[i]);
            assertNotNull(data, "function " + i);
            int padding = (int) (layout.ehFrameAddress() - (TEXT + starts[i] + JitdumpUnwinding.ehFrameOffset(sizes[i])));
            assertArrayEquals(layout.shared().bytes(), Arrays.copyOfRange(data.bytes(), padding, data.bytes().length),
                    "function " + i + ": the shared bytes at the shared address");
        }
    }

    @Test
    void aFunctionGivenASizeReachingPastTheObjectsCodeGetsItsOwnFdeAlone() {
        List<EhFrame.Fde> fdes = fdes(new long[] {0, 0x40, 0x80}, new long[] {0x39, 0x33, 0x0b});
        JitdumpUnwinding.ObjectLayout layout = JitdumpUnwinding.objectLayout(object(0x8b, 0x70), CFI, fdes, PAGE,
                JitdumpUnwinding.PADDING_BUDGET);
        assertNotNull(layout.forFunction(TEXT + 0x80, 0x0b));
        // Rounded up, 0x20 bytes end at 0xa0, the shared address: no room for a padding CIE.
        assertNull(layout.forFunction(TEXT + 0x80, 0x20));
    }
}
