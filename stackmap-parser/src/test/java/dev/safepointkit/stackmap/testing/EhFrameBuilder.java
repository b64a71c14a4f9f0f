package dev.safepointkit.stackmap.testing;

import dev.safepointkit.stackmap.dwarf.CfiFormatException;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Writes small {@code .eh_frame} sections for tests: one CIE with augmentation "zR" (pc-relative
 * sdata4 FDE pointers, code alignment 1, data alignment -8, return address column 16, CFA = RSP+8,
 * RIP at CFA-8) or one the test spells out, then FDEs with the programs the test gives.
 */
public final class EhFrameBuilder {
    /** Where the built section pretends to live. */
    public static final long ADDRESS = 0x7000_0000L;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private int cie = -1;

    /** An empty section. */
    public EhFrameBuilder() {
    }

    /** The usual llc CIE. */
    public EhFrameBuilder cie() {
        return cie(1, "zR", new byte[] {0x1b}, bytes(0x0c, 7, 8, 0x90, 1));
    }

    /** A CIE with the given version, augmentation, augmentation data and initial instructions. */
    public EhFrameBuilder cie(int version, String augmentation, byte[] augmentationData, byte[] initial) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        int32(body, 0);
        body.write(version);
        body.writeBytes(augmentation.getBytes());
        body.write(0);
        body.write(1);      // code alignment
        body.write(0x78);   // data alignment -8
        body.write(16);     // return address column
        if (augmentation.startsWith("z")) {
            body.write(augmentationData.length);
            body.writeBytes(augmentationData);
        }
        body.writeBytes(initial);
        cie = out.size();
        record(body.toByteArray());
        return this;
    }

    /** An FDE of the last CIE covering {@code [pcBegin, pcBegin + range)} (sdata4, pc-relative). */
    public EhFrameBuilder fde(long pcBegin, int range, byte[] program) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        int32(body, out.size() + 4 - cie);
        long field = ADDRESS + out.size() + 8;
        int32(body, (int) (pcBegin - field));
        int32(body, range);
        body.write(0);      // augmentation data length
        body.writeBytes(program);
        record(body.toByteArray());
        return this;
    }

    /** A raw record: the length word is written before {@code body}, then padding to 4 bytes (nops). */
    public EhFrameBuilder raw(byte[] body) {
        record(body);
        return this;
    }

    private void record(byte[] body) {
        int padded = (body.length + 3) & ~3;
        int32(out, padded);
        out.writeBytes(body);
        for (int i = body.length; i < padded; i++) {
            out.write(0);
        }
    }

    public byte[] toByteArray() {
        return out.toByteArray();
    }

    /** The section in native memory of {@code arena}, with a terminator. */
    public MemorySegment build(Arena arena) {
        byte[] b = toByteArray();
        MemorySegment s = arena.allocate(b.length + 4);
        MemorySegment.copy(b, 0, s, ValueLayout.JAVA_BYTE, 0, b.length);
        return s;
    }

    public EhFrame parse(Arena arena) throws CfiFormatException {
        MemorySegment s = build(arena);
        return EhFrame.parse(s, ADDRESS);
    }

    public static byte[] bytes(int... values) {
        byte[] b = new byte[values.length];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) values[i];
        }
        return b;
    }

    private static void int32(ByteArrayOutputStream o, int v) {
        o.write(v);
        o.write(v >>> 8);
        o.write(v >>> 16);
        o.write(v >>> 24);
    }
}
