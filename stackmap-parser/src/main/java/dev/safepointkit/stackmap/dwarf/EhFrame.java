package dev.safepointkit.stackmap.dwarf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A parsed, validated x86-64 {@code .eh_frame} section, relocated to where it lives: every CIE and
 * FDE checked once (lengths, CIE pointers, augmentations, pointer encodings, FDE ranges that do
 * not overlap), then FDEs found by PC with a binary search.
 *
 * <p>Accepted: CIE versions 1 and 3, augmentation strings {@code "z"} followed by any of
 * {@code R}, {@code P}, {@code L}, {@code S} (what llc and GCC write: {@code "zR"}, {@code "zPLR"});
 * pointer encodings absptr, (s|u)data2/4/8, (s|u)leb128, with no application or pc-relative
 * application, and the indirect bit on the personality pointer (which is read, never dereferenced).
 * Refused, with the record named: 64-bit lengths, other augmentations, text-, data-, function-
 * relative or aligned pointers, a CIE pointer that names no CIE, records that overrun the section.
 *
 * <p>Immutable after {@link #parse}; any thread may call anything. The section's memory must stay
 * readable while {@link CfiRow#at} runs an FDE of it (the program bytes are read from it then).
 */
public final class EhFrame {
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** DW_EH_PE_omit: no pointer. */
    static final int PE_OMIT = 0xff;

    private final MemorySegment section;
    private final long address;
    private final Fde[] fdes;   // sorted by pcBegin, not overlapping

    /**
     * One CIE: what its FDEs share.
     *
     * @param offset the CIE's byte offset in the section
     * @param codeAlignment the code alignment factor
     * @param dataAlignment the data alignment factor
     * @param returnAddressRegister the DWARF column of the return address
     * @param fdeEncoding the pointer encoding of its FDEs' pc_begin and pc_range
     * @param lsdaEncoding the encoding of its FDEs' LSDA pointers, or 0xff when it has none
     * @param augmented whether the augmentation starts with {@code z}: its FDEs have augmentation data
     * @param signalFrame whether the augmentation has {@code S}
     * @param instructions where its initial instructions start, as a section offset
     * @param instructionsEnd where they end
     */
    public record Cie(long offset, long codeAlignment, long dataAlignment, int returnAddressRegister, int fdeEncoding,
            int lsdaEncoding, boolean augmented, boolean signalFrame, long instructions, long instructionsEnd) {
    }

    /**
     * One FDE: the code range it covers and its call frame program.
     *
     * @param offset the FDE's byte offset in the section
     * @param cie its CIE
     * @param pcBegin the absolute address of the first instruction it covers
     * @param pcRange how many bytes of code it covers
     * @param instructions where its program starts, as a section offset
     * @param instructionsEnd where it ends
     */
    public record Fde(long offset, Cie cie, long pcBegin, long pcRange, long instructions, long instructionsEnd) {
        /**
         * Whether {@code pc} lies in {@code [pcBegin, pcBegin + pcRange)}.
         *
         * @param pc an absolute address
         * @return true when this FDE covers it
         */
        public boolean covers(long pc) {
            return Long.compareUnsigned(pc - pcBegin, pcRange) < 0;
        }
    }

    private EhFrame(MemorySegment section, long address, Fde[] fdes) {
        this.section = section;
        this.address = address;
        this.fdes = fdes;
    }

    /**
     * Parses and validates a whole section. It ends at its end or at a zero length word (the
     * terminator libgcc needs); what follows a terminator is not read.
     *
     * @param section the section's bytes, relocated
     * @param address the absolute address of the section's first byte (pc-relative pointers are
     *     relative to it); for the section as mapped, {@code section.address()}
     * @return the parsed section
     * @throws CfiFormatException if any record is malformed or unsupported (see the class comment)
     */
    public static EhFrame parse(MemorySegment section, long address) throws CfiFormatException {
        Reader in = new Reader(section, address);
        Map<Long, Cie> cies = new HashMap<>();
        List<Fde> fdes = new ArrayList<>();
        long at = 0;
        while (at < section.byteSize()) {
            in.limit(section.byteSize(), "");
            in.need(at, 4, "record length at 0x" + Long.toHexString(at));
            long length = Integer.toUnsignedLong(section.get(U32, at));
            if (length == 0) {
                break;
            }
            if (length == 0xffff_ffffL) {
                throw new CfiFormatException(at, "record at 0x" + Long.toHexString(at), "64-bit length (not written by LLVM)");
            }
            long end = at + 4 + length;
            if (length < 4 || end > section.byteSize()) {
                throw new CfiFormatException(at, "record at 0x" + Long.toHexString(at), "length " + length
                        + " overruns the section of " + section.byteSize() + " bytes");
            }
            long idField = at + 4;
            long id = Integer.toUnsignedLong(section.get(U32, idField));
            if (id == 0) {
                cies.put(at, cie(in, at, idField + 4, end));
            } else {
                long cieAt = idField - id;
                Cie cie = cies.get(cieAt);
                if (cie == null) {
                    throw new CfiFormatException(idField, "FDE at 0x" + Long.toHexString(at), "CIE pointer " + id
                            + " names no earlier CIE (0x" + Long.toHexString(cieAt) + ")");
                }
                fdes.add(fde(in, at, idField + 4, end, cie));
            }
            at = end;
        }
        fdes.sort(Comparator.comparingLong(Fde::pcBegin));
        for (int i = 1; i < fdes.size(); i++) {
            Fde prev = fdes.get(i - 1);
            Fde next = fdes.get(i);
            if (Long.compareUnsigned(prev.pcBegin() + prev.pcRange(), next.pcBegin()) > 0) {
                throw new CfiFormatException(next.offset(), "FDE at 0x" + Long.toHexString(next.offset()), "its range 0x"
                        + Long.toHexString(next.pcBegin()) + " overlaps the FDE at 0x" + Long.toHexString(prev.offset())
                        + " [0x" + Long.toHexString(prev.pcBegin()) + ", 0x" + Long.toHexString(prev.pcBegin() + prev.pcRange())
                        + ")");
            }
        }
        return new EhFrame(section, address, fdes.toArray(Fde[]::new));
    }

    private static Cie cie(Reader in, long at, long p, long end) throws CfiFormatException {
        String where = "CIE at 0x" + Long.toHexString(at);
        in.limit(end, where);
        int version = in.u8(p++);
        if (version != 1 && version != 3) {
            throw new CfiFormatException(p - 1, where, "version " + version + " (1 or 3 expected)");
        }
        StringBuilder aug = new StringBuilder();
        for (int c; (c = in.u8(p++)) != 0; ) {
            aug.append((char) c);
        }
        String augmentation = aug.toString();
        if (!augmentation.isEmpty() && !augmentation.matches("z[RPLS]*")) {
            throw new CfiFormatException(p - 1, where, "augmentation \"" + augmentation + "\" (\"z\" with R, P, L, S expected)");
        }
        long codeAlignment = in.uleb(p);
        p = in.next;
        long dataAlignment = in.sleb(p);
        p = in.next;
        int ra;
        if (version == 1) {
            ra = in.u8(p++);
        } else {
            ra = (int) in.uleb(p);
            p = in.next;
        }
        int fdeEncoding = 0;
        int lsdaEncoding = PE_OMIT;
        boolean signal = false;
        if (!augmentation.isEmpty()) {
            long augLength = in.uleb(p);
            p = in.next;
            long augEnd = p + augLength;
            in.limit(augEnd, where + ", augmentation data");
            for (int i = 1; i < augmentation.length(); i++) {
                switch (augmentation.charAt(i)) {
                    case 'R' -> fdeEncoding = encoding(in, p++, where, false);
                    case 'L' -> lsdaEncoding = encoding(in, p++, where, false);
                    case 'P' -> {
                        int pe = encoding(in, p++, where, true);
                        in.pointer(p, pe, where + ", personality");
                        p = in.next;
                    }
                    default -> signal = true;   // 'S'
                }
            }
            if (p != augEnd) {
                throw new CfiFormatException(p, where, "augmentation data is " + augLength + " bytes, its fields "
                        + (p - (augEnd - augLength)));
            }
            in.limit(end, where);
        }
        if (fdeEncoding == PE_OMIT) {
            throw new CfiFormatException(p, where, "FDE pointer encoding DW_EH_PE_omit");
        }
        return new Cie(at, codeAlignment, dataAlignment, ra, fdeEncoding, lsdaEncoding, !augmentation.isEmpty(), signal, p, end);
    }

    private static Fde fde(Reader in, long at, long p, long end, Cie cie) throws CfiFormatException {
        String where = "FDE at 0x" + Long.toHexString(at);
        in.limit(end, where);
        long pcBegin = in.pointer(p, cie.fdeEncoding(), where + ", pc_begin");
        p = in.next;
        long pcRange = in.pointer(p, cie.fdeEncoding() & 0x0f, where + ", pc_range");
        p = in.next;
        if (pcRange <= 0) {
            throw new CfiFormatException(p, where, "pc_range " + pcRange);
        }
        if (cie.augmented()) {
            long augLength = in.uleb(p);
            p = in.next;
            long augEnd = p + augLength;
            in.limit(augEnd, where + ", augmentation data");
            if (cie.lsdaEncoding() != PE_OMIT) {
                in.pointer(p, cie.lsdaEncoding(), where + ", LSDA");
                p = in.next;
            }
            if (p != augEnd) {
                throw new CfiFormatException(p, where, "augmentation data is " + augLength + " bytes, the LSDA pointer "
                        + (p - (augEnd - augLength)));
            }
            in.limit(end, where);
        }
        return new Fde(at, cie, pcBegin, pcRange, p, end);
    }

    private static int encoding(Reader in, long p, String where, boolean indirectAllowed) throws CfiFormatException {
        int pe = in.u8(p);
        if (pe == PE_OMIT) {
            return pe;
        }
        int format = pe & 0x0f;
        int application = pe & 0x70;
        boolean formatOk = format == 0x00 || format == 0x01 || format == 0x02 || format == 0x03 || format == 0x04
                || format == 0x09 || format == 0x0a || format == 0x0b || format == 0x0c;
        if (!formatOk || (application != 0x00 && application != 0x10) || ((pe & 0x80) != 0 && !indirectAllowed)) {
            throw new CfiFormatException(p, where, "pointer encoding 0x" + Integer.toHexString(pe)
                    + " (absptr, data or leb128, optionally pc-relative, expected)");
        }
        return pe;
    }

    /**
     * The FDE whose range covers {@code pc}.
     *
     * @param pc an absolute address
     * @return the FDE, or null when none covers it
     */
    public Fde fdeFor(long pc) {
        int lo = 0;
        int hi = fdes.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            Fde f = fdes[mid];
            if (Long.compareUnsigned(pc, f.pcBegin()) < 0) {
                hi = mid - 1;
            } else if (f.covers(pc)) {
                return f;
            } else {
                lo = mid + 1;
            }
        }
        return null;
    }

    /**
     * The FDEs, sorted by {@code pcBegin}.
     *
     * @return an unmodifiable list
     */
    public List<Fde> fdes() {
        return List.of(fdes);
    }

    MemorySegment section() {
        return section;
    }

    long address() {
        return address;
    }

    /** Bounds-checked little-endian reads within the current record; {@link #next} is where the last variable-length read ended. */
    static final class Reader {
        final MemorySegment section;
        final long address;
        long limit;
        String where = "";
        long next;

        Reader(MemorySegment section, long address) {
            this.section = section;
            this.address = address;
            this.limit = section.byteSize();
        }

        void limit(long end, String record) {
            limit = Math.min(end, section.byteSize());
            where = record;
        }

        void need(long p, long n, String what) throws CfiFormatException {
            if (p < 0 || p + n > limit) {
                throw new CfiFormatException(p, where.isEmpty() ? what : where + ", " + what, "needs " + n
                        + " bytes past the record's end at 0x" + Long.toHexString(limit));
            }
        }

        int u8(long p) throws CfiFormatException {
            need(p, 1, "byte");
            return Byte.toUnsignedInt(section.get(ValueLayout.JAVA_BYTE, p));
        }

        long uleb(long p) throws CfiFormatException {
            long result = 0;
            int shift = 0;
            while (true) {
                int b = u8(p++);
                if (shift >= 64 || (shift == 63 && (b & 0x7e) != 0)) {
                    throw new CfiFormatException(p - 1, where, "LEB128 value over 64 bits");
                }
                result |= (long) (b & 0x7f) << shift;
                shift += 7;
                if ((b & 0x80) == 0) {
                    next = p;
                    return result;
                }
            }
        }

        long sleb(long p) throws CfiFormatException {
            long result = 0;
            int shift = 0;
            int b;
            do {
                b = u8(p++);
                if (shift >= 64) {
                    throw new CfiFormatException(p - 1, where, "LEB128 value over 64 bits");
                }
                result |= (long) (b & 0x7f) << shift;
                shift += 7;
            } while ((b & 0x80) != 0);
            if (shift < 64 && (b & 0x40) != 0) {
                result |= -1L << shift;
            }
            next = p;
            return result;
        }

        /** {@code n} little-endian bytes at {@code p}, not extended; sets {@link #next} past them. */
        private long fixed(long p, int n, String what) throws CfiFormatException {
            need(p, n, what);
            long value = n == 8 ? section.get(U64, p) : n == 4 ? section.get(U32, p) : section.get(U16, p);
            next = p + n;
            return value;
        }

        /** A pointer of encoding {@code pe} (already validated) at {@code p}; pc-relative ones made absolute. */
        long pointer(long p, int pe, String what) throws CfiFormatException {
            long value;
            switch (pe & 0x0f) {
                case 0x00, 0x04, 0x0c -> value = fixed(p, 8, what);
                case 0x01 -> value = uleb(p);
                case 0x09 -> value = sleb(p);
                case 0x02 -> value = fixed(p, 2, what) & 0xffffL;
                case 0x0a -> value = (short) fixed(p, 2, what);
                case 0x03 -> value = fixed(p, 4, what) & 0xffff_ffffL;
                case 0x0b -> value = (int) fixed(p, 4, what);
                default -> throw new CfiFormatException(p, where + ", " + what, "pointer format 0x" + Integer.toHexString(pe));
            }
            if ((pe & 0x70) == 0x10) {
                value += address + p;
            }
            return value;
        }
    }
}
