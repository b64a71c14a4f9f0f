package dev.safepointkit.events.perf;

import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.events.LoadedSymbol;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The unwinding data of JIT_CODE_UNWINDING_INFO records: an {@code .eh_frame} (CIEs, FDEs, a zero
 * terminator) followed by the {@code .eh_frame_hdr} that indexes it, laid out for where
 * {@code perf inject --jit} puts them in the ELF file it writes for each function.
 *
 * <p>Where perf puts them. perf (tools/perf/util/genelf.c) writes the code at the text offset and
 * the unwinding data right after it, at the code's end rounded up to 8 bytes: {@code .eh_frame}
 * first, then {@code .eh_frame_hdr}. The mmap event it synthesizes for the function starts at
 * code_addr at that text offset and is {@code alignUp(code_size, 8) + mapped_size} long, so the
 * data appears at {@code code_addr + alignUp(code_size, 8)}. Every pc-relative pointer here is
 * relative to that place, not to where the object's own {@code .eh_frame} lies.
 *
 * <p>Why one function's data alone fails for all but the last function of an object. The data
 * lies right after the function's code, which is where the next function's code is; perf maps the
 * next function there later, and a later mmap takes its range from earlier ones. perf's libunwind
 * unwinder (util/unwind-libunwind-local.c) reads the header's fde_count from the function's own
 * file, but the table, the FDE and the CIE through memory, that is through whichever map holds
 * each address: for every function but the last it reads the next function's code as its table.
 *
 * <p>The object layout ({@link #objectLayout}), which every function of an object that starts on
 * an 8-byte boundary gets: all the object's FDEs in one {@code .eh_frame} with one header, placed
 * at the same absolute address for each function, {@link ObjectLayout#ehFrameAddress}, 16 bytes or
 * more past the end of the object's code, and past the one-function data of every function that
 * gets it (that data lies after the function's code; for a function near the object's end it
 * reaches past the code, and when that function is loaded last its mapping would win over the
 * shared bytes for every function). Each function's record starts with a padding CIE that
 * fills the gap between its code's rounded end and that address, so its file holds the shared
 * bytes at the shared addresses. Whichever function's map perf then reads there, it reads the same
 * bytes, which are right for every function, and no later function's code covers them. The
 * padding makes a function's record as large as the distance from its code to the object's end
 * plus the object's data: {@link #PADDING_BUDGET} bounds their sum per object, and the functions furthest from the end
 * that it leaves out get the one-function layout, as do functions not on an 8-byte boundary
 * (perf's rounding would put their data elsewhere) and every function of an object whose layout
 * would reach past its mapping. The JIT_CODE_LOAD records keep each function's own address and size.
 * A function's size is taken as the larger of its FDE's pc_range and its symbols' sizes; a function
 * whose given size leaves less than {@link #MIN_PADDING} bytes before the shared address gets the
 * one-function layout.
 *
 * <p>Each CIE is rewritten as {@code "zR"} with pc-relative sdata4 FDE pointers: the original's
 * personality and LSDA pointers would point nowhere from the new place, and a profiler's
 * unwinder needs neither. Call frame instructions are copied byte for byte (llc writes no
 * DW_CFA_set_loc, the one instruction with an address). The header is the standard one a linker
 * writes and libunwind and libdw read: version 1, eh_frame_ptr pcrel|sdata4, fde_count udata4, a
 * table of (initial location, FDE) datarel|sdata4 pairs relative to the header's start, sorted.
 *
 * <p>Stateless; any thread.
 */
final class JitdumpUnwinding {
    /** The header's fields before its table. */
    static final int EH_FRAME_HDR_FIELDS = 12;
    static final int EH_FRAME_HDR_ENTRY = 8;
    static final int PE_PCREL_SDATA4 = 0x1b;
    static final int PE_UDATA4 = 0x03;
    static final int PE_DATAREL_SDATA4 = 0x3b;
    /** The smallest padding CIE (length, id, version, empty augmentation, three factors), rounded up to 8. */
    static final int MIN_PADDING = 16;
    /** Most bytes the object layout's records of one object may hold, summed over its functions. */
    static final long PADDING_BUDGET = 8L << 20;
    private static final int DW_CFA_NOP = 0;
    /** The padding CIE's return address column: no FDE refers to it, so any column does. */
    private static final int PADDING_RETURN_COLUMN = 16;

    private JitdumpUnwinding() {
    }

    /**
     * Unwinding data: {@code bytes} is the {@code .eh_frame} then the header, the last
     * {@code hdrSize} bytes.
     */
    record Data(byte[] bytes, int hdrSize) {
    }

    /**
     * An object's shared unwinding data.
     *
     * @param ehFrameAddress where its {@code .eh_frame} (after each function's padding) lies
     * @param shared that {@code .eh_frame} and its header, every FDE of the object
     * @param lowest the lowest function address the padding budget admits
     */
    record ObjectLayout(long ehFrameAddress, Data shared, long lowest) {
        /**
         * The record for the function at {@code address} of {@code size} bytes, or null when it
         * gets the one-function layout.
         */
        Data forFunction(long address, long size) {
            if ((address & 7) != 0 || Long.compareUnsigned(address, lowest) < 0) {
                return null;
            }
            // At least MIN_PADDING for any function inside the object's code; less when the size
            // given reaches past it. Never more than the budget: address >= lowest bounds it.
            long padding = ehFrameAddress - (address + ehFrameOffset(size));
            if (padding < MIN_PADDING) {
                return null;
            }
            byte[] out = new byte[Math.toIntExact(padding + shared.bytes().length)];
            ByteBuffer.wrap(out).put(paddingCie((int) padding)).put(shared.bytes());
            return new Data(out, shared.hdrSize());
        }
    }

    /** Where perf places the unwinding data, relative to the code's first byte. */
    static long ehFrameOffset(long codeSize) {
        return (codeSize + 7) & ~7L;
    }

    /**
     * The one-function layout for the function at {@code fde.pcBegin()} of {@code codeSize} bytes:
     * a CIE, the function's FDE, a zero terminator, then the header.
     *
     * @param section the object's loaded {@code .eh_frame}, which {@code fde} was parsed from
     * @param fde the function's FDE, beginning at the function's first byte
     * @param codeSize the code size the JIT_CODE_LOAD record gives
     */
    static Data build(MemorySegment section, EhFrame.Fde fde, long codeSize) {
        return ehFrameAndHeader(section, List.of(fde), fde.pcBegin() + ehFrameOffset(codeSize));
    }

    /**
     * The object layout for {@code object}, or null when it cannot have one (no executable
     * section, no FDE, or data that would reach past the object's mapping).
     *
     * @param section the object's loaded {@code .eh_frame}
     * @param fdes that section's FDEs, sorted by pc_begin
     * @param pageSize the host maps objects in whole pages
     * @param budget the most bytes the records for the object's functions may hold together
     *     ({@link #PADDING_BUDGET})
     */
    static ObjectLayout objectLayout(LoadedObject object, MemorySegment section, List<EhFrame.Fde> fdes, long pageSize,
            long budget) {
        long codeEnd = 0;
        long mappedEnd = 0;
        for (LoadedSection s : object.sections()) {
            long end = s.address() + s.size();
            if (s.executable() && Long.compareUnsigned(end, codeEnd) > 0) {
                codeEnd = end;
            }
            if (Long.compareUnsigned(end, mappedEnd) > 0) {
                mappedEnd = end;
            }
        }
        if (codeEnd == 0 || fdes.isEmpty()) {
            return null;
        }
        // Where each function's one-function layout would end: perf maps it after the function's
        // code, and when that function is loaded after the others its mapping wins there.
        Map<Long, Long> symbolSize = new HashMap<>();
        for (LoadedSymbol s : object.symbols()) {
            symbolSize.merge(s.address(), s.size(), Math::max);
        }
        long[] ownEnd = new long[fdes.size()];
        for (int i = 0; i < fdes.size(); i++) {
            EhFrame.Fde fde = fdes.get(i);
            // The size a JIT_CODE_LOAD gives: the symbol's, which may differ from the FDE's range.
            long size = Math.max(fde.pcRange(), symbolSize.getOrDefault(fde.pcBegin(), 0L));
            ownEnd[i] = ehFrameOffset(fde.pcBegin() + ehFrameOffset(size) + build(section, fde, size).bytes().length);
        }
        // Past the code, with room for the smallest padding CIE after any function's rounded end,
        // and past the data of every function that gets the one-function layout. Which functions
        // those are depends on the address (the budget), so move it until it covers them all; it
        // only grows, and so does the set.
        long at = ehFrameOffset(codeEnd) + MIN_PADDING;
        int sharedSize = ehFrameAndHeader(section, fdes, at).bytes().length;   // the same at any address
        long lowest;
        while (true) {
            lowest = lowest(fdes, at, sharedSize, budget);
            long need = at;
            for (int i = 0; i < fdes.size(); i++) {
                long pc = fdes.get(i).pcBegin();
                if (((pc & 7) != 0 || Long.compareUnsigned(pc, lowest) < 0) && Long.compareUnsigned(ownEnd[i], need) > 0) {
                    need = ownEnd[i];
                }
            }
            if (need == at) {
                break;
            }
            at = need;
        }
        Data shared = ehFrameAndHeader(section, fdes, at);
        // The host's mapping ends on a page boundary after its last section; past it another
        // object's code could be mapped later and take these addresses.
        long mappingEnd = (mappedEnd + pageSize - 1) & -pageSize;
        if (Long.compareUnsigned(at + shared.bytes().length, mappingEnd) > 0) {
            return null;
        }
        return new ObjectLayout(at, shared, lowest);
    }

    /**
     * The lowest function address whose record, with those of every function above it, fits
     * {@code budget} when the shared data lies at {@code at}; {@code at} when none fits.
     */
    private static long lowest(List<EhFrame.Fde> fdes, long at, int sharedSize, long budget) {
        long lowest = at;
        long spent = 0;
        for (int i = fdes.size() - 1; i >= 0; i--) {
            long pc = fdes.get(i).pcBegin();
            spent += at - pc + sharedSize;   // bounds the function's record
            if (spent > budget) {
                break;
            }
            lowest = pc;
        }
        return lowest;
    }

    /**
     * {@code fdes} (sorted by pc_begin) with their CIEs as an {@code .eh_frame} at absolute
     * address {@code at}, a zero terminator, then the header indexing them.
     */
    static Data ehFrameAndHeader(MemorySegment section, List<EhFrame.Fde> fdes, long at) {
        ByteArrayOutputStream ehFrame = new ByteArrayOutputStream();
        Map<Long, Long> cieAt = new HashMap<>();   // original CIE offset -> the rewritten one's
        long[] fdeAt = new long[fdes.size()];
        for (int i = 0; i < fdes.size(); i++) {
            EhFrame.Fde fde = fdes.get(i);
            EhFrame.Cie cie = fde.cie();
            if (!cieAt.containsKey(cie.offset())) {
                cieAt.put(cie.offset(), (long) ehFrame.size());
                ehFrame.writeBytes(cie(section, cie));
            }
            fdeAt[i] = ehFrame.size();
            ByteBuffer head = ByteBuffer.allocate(9).order(ByteOrder.LITTLE_ENDIAN);
            // pc_begin sits 8 bytes into the FDE (after its length and CIE pointer).
            head.putInt(Math.toIntExact(fde.pcBegin() - (at + fdeAt[i] + 8)));
            head.putInt(Math.toIntExact(fde.pcRange()));
            head.put((byte) 0);                             // no augmentation data (no LSDA)
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            body.writeBytes(head.array());
            body.writeBytes(bytes(section, fde.instructions(), fde.instructionsEnd()));
            // The CIE pointer is the distance from the field (4 bytes into the FDE) back to the CIE.
            ehFrame.writeBytes(record(Math.toIntExact(fdeAt[i] + 4 - cieAt.get(cie.offset())), body.toByteArray()));
        }
        int ehFrameSize = ehFrame.size() + 4;
        int hdrSize = EH_FRAME_HDR_FIELDS + EH_FRAME_HDR_ENTRY * fdes.size();
        ByteBuffer out = ByteBuffer.allocate(ehFrameSize + hdrSize).order(ByteOrder.LITTLE_ENDIAN);
        out.put(ehFrame.toByteArray()).putInt(0);
        long hdr = at + ehFrameSize;
        out.put((byte) 1).put((byte) PE_PCREL_SDATA4).put((byte) PE_UDATA4).put((byte) PE_DATAREL_SDATA4);
        out.putInt(Math.toIntExact(at - (hdr + 4)));             // eh_frame_ptr, relative to itself
        out.putInt(fdes.size());                                 // fde_count
        for (int i = 0; i < fdes.size(); i++) {
            out.putInt(Math.toIntExact(fdes.get(i).pcBegin() - hdr));   // the function's start, from the header
            out.putInt(Math.toIntExact(at + fdeAt[i] - hdr));           // its FDE, from the header
        }
        return new Data(out.array(), hdrSize);
    }

    /** {@code cie} rewritten as "zR" with pc-relative sdata4 FDE pointers. */
    private static byte[] cie(MemorySegment section, EhFrame.Cie cie) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.write(1);                                      // version
        body.writeBytes(new byte[] {'z', 'R', 0});          // augmentation
        uleb(body, cie.codeAlignment());
        sleb(body, cie.dataAlignment());
        body.write(cie.returnAddressRegister());            // a byte in version 1
        uleb(body, 1);                                      // augmentation data: R
        body.write(PE_PCREL_SDATA4);
        body.writeBytes(bytes(section, cie.instructions(), cie.instructionsEnd()));
        return record(0, body.toByteArray());
    }

    /**
     * A CIE of exactly {@code size} bytes (a multiple of 8, at least {@link #MIN_PADDING}) that
     * no FDE uses: it keeps the {@code .eh_frame} a list of records from its first byte on.
     */
    static byte[] paddingCie(int size) {
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(size - 4).putInt(0);                       // length, CIE id
        b.put((byte) 1).put((byte) 0);                      // version, empty augmentation
        b.put((byte) 1).put((byte) 0x78).put((byte) PADDING_RETURN_COLUMN);   // code 1, data -8, return address
        while (b.hasRemaining()) {
            b.put((byte) DW_CFA_NOP);
        }
        return b.array();
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
