package dev.safepointkit.stackmap.dwarf;

import static dev.safepointkit.stackmap.testing.EhFrameBuilder.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.testing.EhFrameBuilder;
import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;

class EhFrameTest {
    private static final long F = 0x40_1000L;

    /** What llc writes for a function with a frame pointer: push rbp; mov rsp,rbp; ...; pop rbp. */
    private static final byte[] FRAME_POINTER = bytes(0x41, 0x0e, 16, 0x86, 2, 0x43, 0x0d, 6, 0x40 | 29, 0x0c, 7, 8);

    @Test
    void findsTheFdeOfAPcAndNothingOutsideAny() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            EhFrame eh = new EhFrameBuilder().cie().fde(F, 0x22, FRAME_POINTER).fde(F + 0x30, 0x40, bytes()).parse(arena);
            assertEquals(2, eh.fdes().size());
            assertEquals(F, eh.fdeFor(F).pcBegin());
            assertEquals(F, eh.fdeFor(F + 0x21).pcBegin());
            assertNull(eh.fdeFor(F + 0x22));
            assertNull(eh.fdeFor(F - 1));
            assertEquals(F + 0x30, eh.fdeFor(F + 0x6f).pcBegin());
            assertNull(eh.fdeFor(F + 0x70));
            assertSame(eh.fdes().get(0).cie(), eh.fdes().get(1).cie());
        }
    }

    @Test
    void rowsFollowTheProgramUpToThePc() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            EhFrame eh = new EhFrameBuilder().cie().fde(F, 0x22, FRAME_POINTER).parse(arena);
            EhFrame.Fde fde = eh.fdeFor(F);
            assertEquals("CFA=R#7+8 R#16=[CFA-8]", CfiRow.at(eh, fde, F).toString());
            assertEquals("CFA=R#7+16 R#6=[CFA-16] R#16=[CFA-8]", CfiRow.at(eh, fde, F + 1).toString());
            CfiRow body = CfiRow.at(eh, fde, F + 0x20);
            assertEquals(6, body.cfaRegister());
            assertEquals(16, body.cfaOffset());
            assertEquals(CfiRow.SAVED, body.rule(6));
            assertEquals(-16, body.savedOffset(6));
            assertEquals(CfiRow.SAME_VALUE, body.rule(3));
            assertEquals("CFA=R#7+8 R#6=[CFA-16] R#16=[CFA-8]", CfiRow.at(eh, fde, F + 0x21).toString());
        }
    }

    @Test
    void rememberRestoreStateAndRestoreGoBackToEarlierRules() throws Exception {
        // push rbx at 1; remember at 5; pop rbx (restore rbx, cfa 8) at 6; restore_state at 7 (an early return's epilogue).
        byte[] program = bytes(0x41, 0x0e, 16, 0x83, 2, 0x44, 0x0a, 0x41, 0x0e, 8, 0xc3, 0x41, 0x0b);
        try (Arena arena = Arena.ofConfined()) {
            EhFrame eh = new EhFrameBuilder().cie().fde(F, 16, program).parse(arena);
            EhFrame.Fde fde = eh.fdeFor(F);
            assertEquals("CFA=R#7+16 R#3=[CFA-16] R#16=[CFA-8]", CfiRow.at(eh, fde, F + 5).toString());
            assertEquals("CFA=R#7+8 R#16=[CFA-8]", CfiRow.at(eh, fde, F + 6).toString());
            assertEquals("CFA=R#7+16 R#3=[CFA-16] R#16=[CFA-8]", CfiRow.at(eh, fde, F + 7).toString());
        }
    }

    @Test
    void undefinedAndSameValueAreKeptApart() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            EhFrame eh = new EhFrameBuilder().cie().fde(F, 8, bytes(0x07, 12, 0x83, 2, 0x41, 0x08, 3)).parse(arena);
            CfiRow first = CfiRow.at(eh, eh.fdeFor(F), F);
            assertEquals(CfiRow.UNDEFINED, first.rule(12));
            assertEquals(CfiRow.SAVED, first.rule(3));
            assertEquals(CfiRow.SAME_VALUE, CfiRow.at(eh, eh.fdeFor(F), F + 1).rule(3));
        }
    }

    @Test
    void augmentationWithPersonalityAndLsdaIsRead() throws Exception {
        // "zPLR": personality indirect|pcrel|sdata4 (0x9b) + 4 bytes, LSDA pcrel|sdata4 (0x1b), FDEs pcrel|sdata4.
        byte[] aug = bytes(0x9b, 0, 0, 0, 0, 0x1b, 0x1b);
        EhFrameBuilder b = new EhFrameBuilder().cie(1, "zPLR", aug, bytes(0x0c, 7, 8, 0x90, 1));
        // An FDE with 4 bytes of augmentation data (the LSDA pointer), written by hand.
        byte[] fde = bytes(0, 0, 0, 0, /* pc_begin */ 0, 0, 0, 0, /* range */ 8, 0, 0, 0, /* aug len */ 4, 0, 0, 0, 0, 0x0e, 16);
        int size = b.toByteArray().length;
        int cieDelta = size + 4;
        fde[0] = (byte) cieDelta;
        int pcBegin = (int) (F - (EhFrameBuilder.ADDRESS + size + 8));
        for (int i = 0; i < 4; i++) {
            fde[4 + i] = (byte) (pcBegin >>> (8 * i));
        }
        try (Arena arena = Arena.ofConfined()) {
            EhFrame eh = b.raw(fde).parse(arena);
            assertEquals(0x1b, eh.fdeFor(F).cie().lsdaEncoding());
            assertEquals("CFA=R#7+16 R#16=[CFA-8]", CfiRow.at(eh, eh.fdeFor(F), F).toString());
        }
    }

    @Test
    void aCfaExpressionIsRefusedNamingTheFdeAndOpcode() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            EhFrame eh = new EhFrameBuilder().cie().fde(F, 8, bytes(0x41, 0x0f, 2, 0x77, 8)).parse(arena);
            assertEquals("CFA=R#7+8 R#16=[CFA-8]", CfiRow.at(eh, eh.fdeFor(F), F).toString());
            CfiFormatException e = assertThrows(CfiFormatException.class, () -> CfiRow.at(eh, eh.fdeFor(F), F + 1));
            assertTrue(e.getMessage().contains("FDE at 0x18, DW_CFA_def_cfa_expression"), e.getMessage());
        }
    }

    @Test
    void registerInRegisterAndValOffsetAreRefused() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            EhFrame reg = new EhFrameBuilder().cie().fde(F, 8, bytes(0x09, 3, 0)).parse(arena);
            assertTrue(assertThrows(CfiFormatException.class, () -> CfiRow.at(reg, reg.fdeFor(F), F)).getMessage()
                    .contains("DW_CFA_register"));
            EhFrame val = new EhFrameBuilder().cie().fde(F, 8, bytes(0x14, 3, 2)).parse(arena);
            assertTrue(assertThrows(CfiFormatException.class, () -> CfiRow.at(val, val.fdeFor(F), F)).getMessage()
                    .contains("DW_CFA_val_offset"));
            EhFrame xmm = new EhFrameBuilder().cie().fde(F, 8, bytes(0x05, 17, 2)).parse(arena);
            assertTrue(assertThrows(CfiFormatException.class, () -> CfiRow.at(xmm, xmm.fdeFor(F), F)).getMessage()
                    .contains("register column 17"));
        }
    }

    @Test
    void malformedSectionsAreRefused() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            assertTrue(assertThrows(CfiFormatException.class, () -> new EhFrameBuilder().cie(1, "zRx", bytes(0x1b), bytes())
                    .parse(arena)).getMessage().contains("augmentation \"zRx\""));
            assertTrue(assertThrows(CfiFormatException.class, () -> new EhFrameBuilder().cie(2, "zR", bytes(0x1b), bytes())
                    .parse(arena)).getMessage().contains("version 2"));
            assertTrue(assertThrows(CfiFormatException.class, () -> new EhFrameBuilder().cie(1, "zR", bytes(0x2b), bytes())
                    .parse(arena)).getMessage().contains("pointer encoding 0x2b"));
            // An FDE whose CIE pointer names nothing.
            assertTrue(assertThrows(CfiFormatException.class, () -> new EhFrameBuilder().cie()
                    .raw(bytes(0x40, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0)).parse(arena)).getMessage().contains("names no earlier CIE"));
            // Overlapping FDEs.
            assertTrue(assertThrows(CfiFormatException.class, () -> new EhFrameBuilder().cie().fde(F, 16, bytes())
                    .fde(F + 8, 16, bytes()).parse(arena)).getMessage().contains("overlaps"));
            // A length past the section's end.
            byte[] whole = new EhFrameBuilder().cie().toByteArray();
            whole[0] = 0x40;
            java.lang.foreign.MemorySegment s = arena.allocate(whole.length);
            java.lang.foreign.MemorySegment.copy(whole, 0, s, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, whole.length);
            assertTrue(assertThrows(CfiFormatException.class, () -> EhFrame.parse(s, 0)).getMessage().contains("overruns"));
            // A program that runs past its record.
            EhFrame cut = new EhFrameBuilder().cie().fde(F, 8, bytes(0x0e, 0x80, 0x80)).parse(arena);
            assertThrows(CfiFormatException.class, () -> CfiRow.at(cut, cut.fdeFor(F), F));
        }
    }

    /**
     * Of a pointer's application only none and pc-relative are read; text-, data-, function-relative
     * and aligned pointers, and the indirect bit on an FDE's pointers, are refused naming the byte.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {0x2b, 0x3b, 0x4b, 0x5b, 0x9b})
    void pointersRelativeToAnythingButThePcAreRefused(int encoding) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            CfiFormatException e = assertThrows(CfiFormatException.class,
                    () -> new EhFrameBuilder().cie(1, "zR", bytes(encoding), bytes()).fde(F, 8, bytes()).parse(arena));
            assertTrue(e.getMessage().contains("pointer encoding 0x" + Integer.toHexString(encoding)), e.getMessage());
            assertEquals(F, new EhFrameBuilder().cie(1, "zR", bytes(encoding & 0x0f | 0x10), bytes()).fde(F, 8, bytes())
                    .parse(arena).fdeFor(F).pcBegin(), "the same pointer pc-relative is read");
        }
    }

    @Test
    void aRecordWithA64BitLengthIsRefusedNamingIt() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            byte[] cie = new EhFrameBuilder().cie().toByteArray();
            byte[] whole = new byte[12 + cie.length];
            // 0xffffffff, then a 64-bit length: the DWARF64 form, which LLVM never writes in .eh_frame.
            java.nio.ByteBuffer.wrap(whole).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(-1).putLong(cie.length - 4)
                    .put(cie, 4, cie.length - 4);
            java.lang.foreign.MemorySegment s = arena.allocate(whole.length);
            java.lang.foreign.MemorySegment.copy(whole, 0, s, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, whole.length);
            CfiFormatException e = assertThrows(CfiFormatException.class, () -> EhFrame.parse(s, 0));
            assertTrue(e.getMessage().contains("record at 0x0") && e.getMessage().contains("64-bit length"), e.getMessage());
        }
    }
}
