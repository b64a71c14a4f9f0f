package dev.safepointkit.events.perf;

import dev.safepointkit.stackmap.dwarf.EhFrame;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The unwinding data of one JIT_CODE_UNWINDING_INFO record: a {@code .eh_frame} with one CIE and
 * the function's FDE, then the {@code .eh_frame_hdr} that indexes it, laid out for where
 * {@code perf inject --jit} puts them in the ELF file it writes for the function.
 *
 * <p>perf (tools/perf/util/genelf.c) places the code at the text offset and the unwinding data
 * right after it, at the code's end rounded up to 8 bytes: {@code .eh_frame} first, then
 * {@code .eh_frame_hdr}. So every pc-relative pointer here is relative to that place, not to where
 * the object's own {@code .eh_frame} lies: the FDE's pc_begin points {@code alignUp(codeSize, 8)
 * + (its own offset)} bytes back, to the code's first byte. The CIE is rewritten as {@code "zR"}
 * with pc-relative sdata4 FDE pointers: the original's personality and LSDA pointers would point
 * nowhere from the new place, and a profiler's unwinder needs neither. The call frame instructions
 * are copied byte for byte (llc writes no DW_CFA_set_loc, the one instruction with an address).
 *
 * <p>The header is the standard one a linker writes and libunwind and libdw read: version 1,
 * eh_frame_ptr pcrel|sdata4, fde_count udata4, a table of (initial location, FDE) datarel|sdata4
 * pairs relative to the header's start.
 *
 * <p>Stateless; any thread.
 */
final class JitdumpUnwinding {
    /** Size of the {@code .eh_frame_hdr} with one table entry. */
    static final int EH_FRAME_HDR_SIZE = 20;
    static final int PE_PCREL_SDATA4 = 0x1b;
    static final int PE_UDATA4 = 0x03;
    static final int PE_DATAREL_SDATA4 = 0x3b;
    private static final int DW_CFA_NOP = 0;

    private JitdumpUnwinding() {
    }

    /** Where perf places the unwinding data, relative to the code's first byte. */
    static long ehFrameOffset(long codeSize) {
        return (codeSize + 7) & ~7L;
    }

    /**
     * The unwinding data for the function at {@code fde.pcBegin()} of {@code codeSize} bytes:
     * {@code .eh_frame} (CIE, FDE, a zero terminator) followed by {@code .eh_frame_hdr}.
     *
     * @param section the object's loaded {@code .eh_frame}, which {@code fde} was parsed from
     * @param fde the function's FDE, beginning at the function's first byte
     * @param codeSize the code size the JIT_CODE_LOAD record gives
     */
    static byte[] build(MemorySegment section, EhFrame.Fde fde, long codeSize) {
        EhFrame.Cie cie = fde.cie();
        ByteArrayOutputStream cieBody = new ByteArrayOutputStream();
        cieBody.write(1);                                   // version
        cieBody.writeBytes(new byte[] {'z', 'R', 0});       // augmentation
        uleb(cieBody, cie.codeAlignment());
        sleb(cieBody, cie.dataAlignment());
        cieBody.write(cie.returnAddressRegister());         // a byte in version 1
        uleb(cieBody, 1);                                   // augmentation data: R
        cieBody.write(PE_PCREL_SDATA4);
        cieBody.writeBytes(bytes(section, cie.instructions(), cie.instructionsEnd()));
        byte[] cieRecord = record(0, cieBody.toByteArray());

        long fdeAt = cieRecord.length;
        long ehFrameStart = ehFrameOffset(codeSize);        // relative to the code's first byte
        ByteBuffer fdeHead = ByteBuffer.allocate(9).order(ByteOrder.LITTLE_ENDIAN);
        // pc_begin sits 8 bytes into the FDE (after its length and CIE pointer).
        fdeHead.putInt(Math.toIntExact(-(ehFrameStart + fdeAt + 8)));
        fdeHead.putInt(Math.toIntExact(fde.pcRange()));
        fdeHead.put((byte) 0);                              // no augmentation data (no LSDA)
        ByteArrayOutputStream fdeBody = new ByteArrayOutputStream();
        fdeBody.writeBytes(fdeHead.array());
        fdeBody.writeBytes(bytes(section, fde.instructions(), fde.instructionsEnd()));
        // The CIE pointer is the distance from the field (4 bytes into the FDE) back to the CIE.
        byte[] fdeRecord = record(Math.toIntExact(fdeAt + 4), fdeBody.toByteArray());

        int ehFrameSize = cieRecord.length + fdeRecord.length + 4;
        ByteBuffer out = ByteBuffer.allocate(ehFrameSize + EH_FRAME_HDR_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        out.put(cieRecord).put(fdeRecord).putInt(0);
        long hdr = ehFrameStart + ehFrameSize;              // relative to the code's first byte
        out.put((byte) 1).put((byte) PE_PCREL_SDATA4).put((byte) PE_UDATA4).put((byte) PE_DATAREL_SDATA4);
        out.putInt(Math.toIntExact(ehFrameStart - (hdr + 4)));   // eh_frame_ptr, relative to itself
        out.putInt(1);                                           // fde_count
        out.putInt(Math.toIntExact(-hdr));                       // the function's start, from the header
        out.putInt(Math.toIntExact(ehFrameStart + fdeAt - hdr)); // its FDE, from the header
        return out.array();
    }

    /** A CIE or FDE: length, id or CIE pointer, body, padded with DW_CFA_nop to a multiple of 8 bytes. */
    private static byte[] record(int id, byte[] body) {
        int unpadded = 8 + body.length;
        int total = (unpadded + 7) & ~7;
        ByteBuffer b = ByteBuffer.allocate(total).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(total - 4).putInt(id).put(body);
        while (b.hasRemaining()) {
            b.put((byte) DW_CFA_NOP);
        }
        return b.array();
    }

    private static byte[] bytes(MemorySegment section, long from, long to) {
        return section.asSlice(from, to - from).toArray(ValueLayout.JAVA_BYTE);
    }

    private static void uleb(ByteArrayOutputStream out, long value) {
        do {
            int b = (int) (value & 0x7f);
            value >>>= 7;
            out.write(value != 0 ? b | 0x80 : b);
        } while (value != 0);
    }

    private static void sleb(ByteArrayOutputStream out, long value) {
        while (true) {
            int b = (int) (value & 0x7f);
            value >>= 7;
            boolean done = (value == 0 && (b & 0x40) == 0) || (value == -1 && (b & 0x40) != 0);
            out.write(done ? b : b | 0x80);
            if (done) {
                return;
            }
        }
    }
}
