package dev.safepointkit.host;

import dev.safepointkit.stackmap.ObjectStackMaps;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfRelocation;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the linker checks in an object before it maps anything: every section it loads, every
 * symbol and every relocation must fit the object (and, once relocated, its {@code .eh_frame}
 * must be one the process unwinder can read: {@link #ehFrame}), so that laying out, copying, relocating and
 * describing it can index without further checks. The ELF reader has already checked that the
 * section headers and the tables it read lie inside the file; these checks are about what the
 * loader does with the values (section-relative offsets, sizes, alignments), which only make
 * sense for a relocatable object.
 *
 * <p>Each failure is a {@link JitLoadException} that names the object, the section, symbol or
 * relocation, and the rule it breaks. Stateless; safe from any thread.
 */
final class ObjectChecks {
    /**
     * The most one object may map. Section sizes of SHT_NOBITS sections and COMMON symbols come
     * from the file unchecked by its length; this bound keeps their sum from overflowing or
     * asking for more address space than a JIT object ever needs.
     */
    static final long MAX_MAPPING_BYTES = 1L << 30;

    /** Section indices from here up are reserved (SHN_LORESERVE); only SHN_ABS and SHN_COMMON mean anything here. */
    private static final int SHN_LORESERVE = 0xff00;
    /** Symbol visibilities (the low bits of st_other) that keep a symbol inside its object. */
    private static final int STV_INTERNAL = 1;
    private static final int STV_HIDDEN = 2;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private ObjectChecks() {
    }

    /**
     * Checks a section the linker is about to load ({@code SHF_ALLOC}, not empty): it has bytes
     * (in the file, or zero-filled for SHT_NOBITS, which code and stack maps may not be), an
     * alignment the page-aligned mapping can honour, and a size within {@link #MAX_MAPPING_BYTES}.
     */
    static void loadedSection(String object, ElfSection s, long pageSize) throws JitLoadException {
        if (s.type() == ElfSection.SHT_NULL) {
            throw new JitLoadException(object + ": section " + describe(s) + " is SHF_ALLOC but of type SHT_NULL, "
                    + "so it has no bytes to load");
        }
        if (s.type() == ElfSection.SHT_NOBITS && (s.flags() & ElfSection.SHF_EXECINSTR) != 0) {
            throw new JitLoadException(object + ": section " + describe(s) + " is executable but of type SHT_NOBITS: "
                    + "code must have bytes in the file");
        }
        if (s.type() == ElfSection.SHT_NOBITS && s.name().equals(ObjectStackMaps.SECTION_NAME)) {
            // Zeros are no stack map, and finding out would mean reading every one of them.
            throw new JitLoadException(object + ": section " + describe(s) + " is of type SHT_NOBITS: "
                    + "a stack map section must have bytes in the file");
        }
        checkAlignment(object, "section " + describe(s), "sh_addralign", s.alignment(), pageSize);
        if (Long.compareUnsigned(s.size(), MAX_MAPPING_BYTES) > 0) {
            throw new JitLoadException(object + ": section " + describe(s) + " has sh_size 0x" + Long.toHexString(s.size())
                    + ", more than the " + MAX_MAPPING_BYTES + " bytes the host maps for one object");
        }
    }

    /**
     * Checks every symbol: symbol 0 is the null symbol; a defined one lies inside its section
     * ({@code st_value + st_size} at most the section's size, without wrapping) and its section
     * index names a section, SHN_ABS or SHN_COMMON; a COMMON one has a usable alignment and size;
     * an undefined one has a name to resolve; and no name is exported twice.
     */
    static void symbols(String object, ElfFile elf, List<ElfSymbol> symbols, long pageSize) throws JitLoadException {
        Map<String, ElfSymbol> exported = new HashMap<>();
        for (ElfSymbol s : symbols) {
            if (s.index() == 0) {
                // Relocations against the null symbol mean "no symbol"; the linker gives it address 0.
                if (!s.name().isEmpty() || s.type() != 0 || s.binding() != 0 || s.sectionIndex() != 0 || s.value() != 0
                        || s.size() != 0) {
                    throw new JitLoadException(object + ": symbol 0 is not the null symbol (its name, type, binding, "
                            + "section, value and size must all be 0)");
                }
                continue;
            }
            int shndx = s.sectionIndex();
            if (shndx == ElfSymbol.SHN_UNDEF) {
                if (s.name().isEmpty()) {
                    throw new JitLoadException(object + ": undefined symbol " + s.index() + " has no name, "
                            + "so nothing can resolve it");
                }
                continue;
            }
            if (shndx == ElfSymbol.SHN_COMMON) {
                // For COMMON symbols st_value is the alignment.
                checkAlignment(object, "COMMON symbol " + describe(s), "st_value", s.value(), pageSize);
                if (Long.compareUnsigned(s.size(), MAX_MAPPING_BYTES) > 0) {
                    throw new JitLoadException(object + ": COMMON symbol " + describe(s) + " has st_size 0x"
                            + Long.toHexString(s.size()) + ", more than the " + MAX_MAPPING_BYTES
                            + " bytes the host maps for one object");
                }
            } else if (shndx != ElfSymbol.SHN_ABS) {
                if (shndx >= SHN_LORESERVE) {
                    throw new JitLoadException(object + ": symbol " + describe(s) + " has reserved section index 0x"
                            + Integer.toHexString(shndx) + ", which the host does not support");
                }
                if (shndx >= elf.sections().size()) {
                    throw new JitLoadException(object + ": symbol " + describe(s) + " is defined in section " + shndx
                            + ", but the object has " + elf.sections().size() + " sections");
                }
                ElfSection section = elf.section(shndx);
                if (Long.compareUnsigned(s.value(), section.size()) > 0
                        || Long.compareUnsigned(s.size(), section.size() - s.value()) > 0) {
                    throw new JitLoadException(object + ": symbol " + describe(s) + " at st_value 0x"
                            + Long.toHexString(s.value()) + " with st_size 0x" + Long.toHexString(s.size())
                            + " runs past the end of section " + describe(section) + " of 0x"
                            + Long.toHexString(section.size()) + " bytes");
                }
            }
            if (exports(s)) {
                ElfSymbol first = exported.putIfAbsent(s.name(), s);
                if (first != null) {
                    throw new JitLoadException(object + ": symbol '" + s.name() + "' is defined twice, as symbols "
                            + first.index() + " and " + s.index());
                }
            }
        }
    }

    /**
     * Checks a relocation of loaded section {@code target}: it refers to a symbol of the table,
     * its whole field lies inside the section (no wrap-around for huge offsets or for sections
     * smaller than the field), and the symbol has an address: it is undefined (resolved by name),
     * absolute, COMMON, or defined in a loaded section.
     */
    static void relocation(String object, ElfFile elf, ElfSection target, ElfRelocation r, List<ElfSymbol> symbols,
            Set<Integer> loadedSections) throws JitLoadException {
        String where = X86Relocations.name(r.type()) + " in " + target.name() + " at offset 0x" + Long.toHexString(r.offset());
        if (r.symbolIndex() < 0 || r.symbolIndex() >= symbols.size()) {
            throw new JitLoadException(object + ": relocation " + where + " refers to symbol "
                    + Integer.toUnsignedString(r.symbolIndex()) + ", outside the symbol table of " + symbols.size());
        }
        int field = fieldSize(r.type());
        if (field > target.size() || Long.compareUnsigned(r.offset(), target.size() - field) > 0) {
            throw new JitLoadException(object + ": relocation " + where + " writes " + field + " bytes outside "
                    + target.name() + " of " + target.size() + " bytes");
        }
        ElfSymbol sym = symbols.get(r.symbolIndex());
        int shndx = sym.sectionIndex();
        if (r.symbolIndex() != 0 && shndx != ElfSymbol.SHN_UNDEF && shndx != ElfSymbol.SHN_ABS
                && shndx != ElfSymbol.SHN_COMMON && !loadedSections.contains(shndx)) {
            // symbols() has checked shndx: it names a section, which is empty or not SHF_ALLOC.
            throw new JitLoadException(object + ": relocation " + where + " refers to symbol " + describe(sym)
                    + " of section " + describe(elf.section(shndx)) + ", which is not loaded (empty or not SHF_ALLOC)");
        }
    }

    /**
     * Checks that at most one loaded section is named {@code .eh_frame}: libgcc registers one
     * section per call, and the host registers the one it finds.
     */
    static void ehFrameSections(String object, List<ElfSection> loaded) throws JitLoadException {
        List<ElfSection> found = loaded.stream().filter(s -> s.name().equals(EhFrameRegistration.SECTION_NAME)).toList();
        if (found.size() > 1) {
            throw new JitLoadException(object + ": " + found.size() + " loaded sections are named "
                    + EhFrameRegistration.SECTION_NAME + " (" + found.stream().map(ObjectChecks::describe).toList()
                    + "); the host registers one per object");
        }
    }

    /**
     * Checks a relocated {@code .eh_frame} before the unwinder is given it, the one check made
     * after mapping: the relocated bytes are what libgcc reads, and libgcc aborts the process on
     * much of what it cannot read, even though it reads most of it only later, while unwinding
     * through a frame. Each record's 32-bit length
     * keeps it inside the section; no record is a zero terminator before the end (libgcc would
     * ignore everything after it); 64-bit lengths, which llc never writes, are refused; each
     * CIE has version 1 or 3 and an augmentation the host knows ({@code ""}, or {@code z}
     * followed by {@code P}, {@code L}, {@code R}, {@code S}) whose pointer encodings are
     * fixed-size, absolute or PC-relative; each FDE's CIE pointer leads back to a CIE of the
     * section, and its PC range lies inside {@code code}, so no object describes code it does
     * not own; each CIE's initial instructions and each FDE's program pass
     * {@link #callFrameProgram}; and the section is followed by the {@link EhFrameRegistration#TERMINATOR_BYTES}
     * zero bytes libgcc stops at.
     *
     * @param withTerminator the section at its loaded address, followed by its terminator
     * @param code the object's code group, which every FDE's range must lie in
     * @return every FDE, in section order
     */
    static List<Fde> ehFrame(String object, MemorySegment withTerminator, MemorySegment code) throws JitLoadException {
        long size = withTerminator.byteSize() - EhFrameRegistration.TERMINATOR_BYTES;
        String where = object + ": " + EhFrameRegistration.SECTION_NAME + " of " + size + " bytes: ";
        Map<Long, Cie> cies = new HashMap<>();   // CIE offset -> what its FDEs need of it
        List<Fde> fdes = new ArrayList<>();
        long at = 0;
        while (at < size) {
            if (size - at < 8) {
                throw new JitLoadException(where + "the record at offset 0x" + Long.toHexString(at)
                        + " is cut off: a length and a CIE id need 8 bytes, " + (size - at) + " are left");
            }
            long length = Integer.toUnsignedLong(withTerminator.get(U32, at));
            if (length == 0) {
                throw new JitLoadException(where + "a zero length (a terminator) at offset 0x" + Long.toHexString(at)
                        + " before the end: the unwinder would ignore the " + (size - at - 4) + " bytes after it");
            }
            if (length == 0xffff_ffffL) {
                throw new JitLoadException(where + "the record at offset 0x" + Long.toHexString(at)
                        + " has a 64-bit length, which the host does not support");
            }
            if (length < 4 || length > size - at - 4) {
                throw new JitLoadException(where + "the record at offset 0x" + Long.toHexString(at) + " has length "
                        + length + ", which " + (length < 4 ? "leaves no room for its CIE id" : "runs past the end"));
            }
            EhCursor in = new EhCursor(where, withTerminator, at + 8, at + 4 + length);
            long id = Integer.toUnsignedLong(withTerminator.get(U32, at + 4));
            if (id == 0) {
                Cie cie = cie(in, at);
                cies.put(at, cie);
                callFrameProgram(in, "the CIE at offset 0x" + Long.toHexString(at), cie);
            } else {
                // The CIE pointer counts back from the field itself.
                long cie = at + 4 - id;
                Cie of = cies.get(cie);
                if (of == null) {
                    throw new JitLoadException(where + "the FDE at offset 0x" + Long.toHexString(at) + " points to a CIE at "
                            + (cie < 0 ? "before the section" : "offset 0x" + Long.toHexString(cie))
                            + ", where no CIE of the section starts");
                }
                long begin = in.pointer(of.fdeEncoding());
                long range = in.pointer(of.fdeEncoding() & 0x0f);
                if (Long.compareUnsigned(begin - code.address(), code.byteSize()) > 0
                        || Long.compareUnsigned(range, code.address() + code.byteSize() - begin) > 0) {
                    throw new JitLoadException(where + "the FDE at offset 0x" + Long.toHexString(at) + " describes [0x"
                            + Long.toHexString(begin) + ", +0x" + Long.toHexString(range) + "), outside the object's code "
                            + "[0x" + Long.toHexString(code.address()) + ", +0x" + Long.toHexString(code.byteSize()) + ")");
                }
                if (of.augmented()) {
                    long dataLength = in.leb();
                    in.need(dataLength);
                    in.skip(dataLength);
                }
                callFrameProgram(in, "the FDE at offset 0x" + Long.toHexString(at), of);
                fdes.add(new Fde(at, begin, range));
            }
            at += 4 + length;
        }
        if (withTerminator.get(U32, size) != 0) {
            throw new JitLoadException(where + "it is not followed by the 4-byte zero terminator the unwinder stops at");
        }
        return fdes;
    }

    /** What an FDE's reading needs of its CIE. */
    private record Cie(int fdeEncoding, boolean augmented) {
    }

    /** Reads a CIE's header after its id, checking what libgcc would read, up to its initial instructions. */
    private static Cie cie(EhCursor in, long cie) throws JitLoadException {
        String what = "the CIE at offset 0x" + Long.toHexString(cie);
        int version = in.u8();
        if (version != 1 && version != 3) {
            throw in.error(what + " has version " + version + "; the host registers versions 1 and 3, as llc writes them");
        }
        StringBuilder augmentation = new StringBuilder();
        for (int c = in.u8(); c != 0; c = in.u8()) {
            augmentation.append((char) c);
        }
        if (!augmentation.isEmpty() && augmentation.charAt(0) != 'z') {
            throw in.error(what + " has augmentation \"" + augmentation + "\", which does not start with 'z'");
        }
        in.leb();   // code alignment
        in.leb();   // data alignment
        if (version == 1) {
            in.u8();   // return address register
        } else {
            in.leb();
        }
        if (augmentation.isEmpty()) {
            return new Cie(DW_EH_PE_ABSPTR, false);
        }
        long dataLength = in.leb();
        in.need(dataLength);
        long dataEnd = in.position() + dataLength;
        int fdeEncoding = DW_EH_PE_ABSPTR;
        for (int i = 1; i < augmentation.length(); i++) {
            char c = augmentation.charAt(i);
            switch (c) {
                case 'P' -> in.pointer(checkedEncoding(in, what, "personality", in.u8(), true));
                case 'L' -> {
                    int lsda = in.u8();
                    if (lsda != DW_EH_PE_OMIT) {
                        checkedEncoding(in, what, "LSDA", lsda, false);
                    }
                }
                case 'R' -> fdeEncoding = checkedEncoding(in, what, "FDE pointer", in.u8(), false);
                case 'S' -> {
                }
                default -> throw in.error(what + " has augmentation \"" + augmentation + "\", whose '" + c
                        + "' the host does not know");
            }
        }
        if (in.position() > dataEnd) {
            throw in.error(what + "'s augmentation data runs past the " + dataLength + " bytes its length gives");
        }
        in.skip(dataEnd - in.position());
        return new Cie(fdeEncoding, true);
    }

    /**
     * Checks a call frame program, the rest of a CIE or FDE record, the way libgcc's interpreter
     * will read it when an exception or {@code backtrace()} first unwinds through the code: it
     * aborts the process on an opcode it does not know and reads past the record on an operand
     * the record cuts off, and a {@code DW_CFA_restore_state} with nothing remembered makes it
     * follow a null pointer. So every opcode must be one of DWARF's for x86-64 with all of its
     * operands inside the record, and no state restored that the same program did not remember.
     * The DWARF expression opcodes are refused: libgcc evaluates their expressions on a stack
     * it does not bound-check and aborts on what it does not know, llc writes none on x86-64, and
     * the host does not check expressions.
     */
    private static void callFrameProgram(EhCursor in, String what, Cie cie) throws JitLoadException {
        int remembered = 0;
        while (in.remaining() > 0) {
            long at = in.position();
            int op = in.u8();
            switch (op & 0xc0) {
                case 0x40, 0xc0 -> {   // DW_CFA_advance_loc, DW_CFA_restore: the operand is in the opcode
                    continue;
                }
                case 0x80 -> {   // DW_CFA_offset
                    in.leb();
                    continue;
                }
                default -> {
                }
            }
            switch (op) {
                case 0x00, 0x0a -> {   // DW_CFA_nop, DW_CFA_remember_state
                    if (op == 0x0a) {
                        remembered++;
                    }
                }
                case 0x01 -> in.pointer(checkedEncoding(in, what, "DW_CFA_set_loc", cie.fdeEncoding(), false));
                case 0x02 -> in.fixed(1);
                case 0x03 -> in.fixed(2);
                case 0x04 -> in.fixed(4);
                case 0x0b -> {   // DW_CFA_restore_state
                    if (remembered == 0) {
                        throw in.error(what + " has a DW_CFA_restore_state at offset 0x" + Long.toHexString(at)
                                + " with no state remembered before it");
                    }
                    remembered--;
                }
                // register and offset, two registers, register and factored offset, GNU negative offset
                case 0x05, 0x09, 0x0c, 0x11, 0x12, 0x14, 0x15, 0x2f -> {
                    in.leb();
                    in.leb();
                }
                // one register, an offset, or the GNU argument size
                case 0x06, 0x07, 0x08, 0x0d, 0x0e, 0x13, 0x2e -> in.leb();
                case 0x0f, 0x10, 0x16 -> throw in.error(what + " has a DWARF expression opcode 0x"
                        + Integer.toHexString(op) + " at offset 0x" + Long.toHexString(at)
                        + "; the host registers call frame programs without expressions");
                default -> throw in.error(what + " has call frame opcode 0x" + Integer.toHexString(op) + " at offset 0x"
                        + Long.toHexString(at) + ", which the unwinder does not know");
            }
        }
    }

    private static int checkedEncoding(EhCursor in, String what, String name, int encoding, boolean mayBeIndirect)
            throws JitLoadException {
        int format = encoding & 0x0f;
        int application = encoding & (mayBeIndirect ? 0x70 : 0xf0);
        boolean fixedSize = format == 0 || format == 2 || format == 3 || format == 4 || format == 0xa || format == 0xb
                || format == 0xc;
        if (!fixedSize || (application != 0 && application != DW_EH_PE_PCREL)) {
            throw in.error(what + " has " + name + " encoding 0x" + Integer.toHexString(encoding)
                    + "; the host registers fixed-size absolute or PC-relative pointers"
                    + (mayBeIndirect ? ", possibly indirect" : ""));
        }
        return encoding;
    }

    /**
     * An FDE of a checked {@code .eh_frame}.
     *
     * @param offset where its record starts in the section
     * @param begin the first address it describes, absolute
     * @param range how many bytes from {@code begin} it describes
     */
    record Fde(long offset, long begin, long range) {
    }

    private static final int DW_EH_PE_ABSPTR = 0x00;
    private static final int DW_EH_PE_PCREL = 0x10;
    private static final int DW_EH_PE_OMIT = 0xff;

    /** Reads one record of a mapped {@code .eh_frame}, refusing to read past the record's end. */
    private static final class EhCursor {
        private final String where;
        private final MemorySegment section;
        private final long end;
        private long at;

        EhCursor(String where, MemorySegment section, long at, long end) {
            this.where = where;
            this.section = section;
            this.at = at;
            this.end = end;
        }

        long position() {
            return at;
        }

        JitLoadException error(String message) {
            return new JitLoadException(where + message);
        }

        void need(long bytes) throws JitLoadException {
            if (Long.compareUnsigned(bytes, end - at) > 0) {
                throw error("the record ending at offset 0x" + Long.toHexString(end) + " is cut off at offset 0x"
                        + Long.toHexString(at) + ": " + Long.toUnsignedString(bytes) + " more bytes needed");
            }
        }

        long remaining() {
            return end - at;
        }

        void skip(long bytes) throws JitLoadException {
            need(bytes);
            at += bytes;
        }

        /** An operand of {@code bytes} bytes, checked to lie in the record and skipped. */
        void fixed(int bytes) throws JitLoadException {
            skip(bytes);
        }

        int u8() throws JitLoadException {
            need(1);
            return Byte.toUnsignedInt(section.get(ValueLayout.JAVA_BYTE, at++));
        }

        /** A LEB128 number's bits (signed or not: only its extent matters here, or its value when small). */
        long leb() throws JitLoadException {
            long value = 0;
            for (int shift = 0; ; shift += 7) {
                int b = u8();
                if (shift < 64) {
                    value |= (long) (b & 0x7f) << shift;
                }
                if ((b & 0x80) == 0) {
                    return value;
                }
            }
        }

        /** A pointer of a fixed-size {@code encoding} that {@link #checkedEncoding} accepted, PC-relative made absolute. */
        long pointer(int encoding) throws JitLoadException {
            long field = section.address() + at;
            int format = encoding & 0x0f;
            int width = switch (format) {
                case 0x2, 0xa -> 2;
                case 0x3, 0xb -> 4;
                default -> 8;
            };
            need(width);
            long value = switch (format) {
                case 0x2 -> Short.toUnsignedLong(section.get(U16, at));
                case 0xa -> section.get(U16, at);
                case 0x3 -> Integer.toUnsignedLong(section.get(U32, at));
                case 0xb -> section.get(U32, at);
                default -> section.get(U64, at);
            };
            at += width;
            return (encoding & 0x70) == DW_EH_PE_PCREL ? field + value : value;
        }
    }

    /** The bytes a relocation of {@code type} writes. */
    static int fieldSize(int type) {
        return switch (type) {
            case X86Relocations.R_X86_64_NONE -> 0;
            case X86Relocations.R_X86_64_64, X86Relocations.R_X86_64_PC64 -> 8;
            default -> 4;
        };
    }

    /**
     * Whether {@code s} is a definition other objects may link to. Hidden and internal symbols are
     * not, whatever their binding: they are private to the object as they would be to a linked
     * module (llc's {@code DW.ref.__gxx_personality_v0}, a weak hidden COMDAT object in every
     * object with a personality, is one; exported, the second such object would clash with the first).
     */
    static boolean exports(ElfSymbol s) {
        return !s.isUndefined() && s.binding() != ElfSymbol.STB_LOCAL && !s.name().isEmpty()
                && s.type() != ElfSymbol.STT_SECTION && s.type() != ElfSymbol.STT_FILE
                && s.visibility() != STV_INTERNAL && s.visibility() != STV_HIDDEN;
    }

    private static void checkAlignment(String object, String what, String field, long alignment, long pageSize)
            throws JitLoadException {
        // 0 and 1 mean no constraint; the mapping starts on a page, so larger alignments cannot be met.
        if (Long.bitCount(alignment) > 1 || Long.compareUnsigned(alignment, pageSize) > 0) {
            throw new JitLoadException(object + ": " + what + " asks for alignment " + Long.toUnsignedString(alignment)
                    + " (" + field + "), which is " + (Long.bitCount(alignment) > 1 ? "not a power of two"
                    : "more than the page size " + pageSize + " the mapping is aligned to"));
        }
    }

    private static String describe(ElfSection s) {
        return s.name().isEmpty() ? "[" + s.index() + "]" : s.name() + " [" + s.index() + "]";
    }

    private static String describe(ElfSymbol s) {
        return (s.name().isEmpty() ? "" : "'" + s.name() + "' ") + "(index " + s.index() + ")";
    }
}
