package dev.safepointkit.host;

import dev.safepointkit.events.SourceLine;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfFormatException;
import dev.safepointkit.stackmap.elf.ElfRelocation;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Decodes an object's {@code .debug_line} (DWARF 2 to 5, in the 32-bit or the 64-bit DWARF format)
 * into rows at the addresses where the code was loaded. The section is not loaded (it is not
 * SHF_ALLOC): it is read from the file image, a copy of it relocated first with
 * {@code .rela.debug_line} ({@code R_X86_64_64} for {@code DW_LNE_set_address} and for the 8-byte
 * {@code DW_FORM_line_strp} and {@code DW_FORM_strp} offsets of 64-bit units, {@code R_X86_64_32}
 * for the 4-byte ones of 32-bit units). A unit's format is its own: a {@code unit_length} of
 * {@code 0xffffffff} says that an 8-byte length follows and that the unit's {@code header_length}
 * and string offsets are 8 bytes too. Every read is bounds checked: a malformed table is a
 * {@link DebugLineException}, never a read outside the section. Stateless; safe from any thread.
 */
final class DebugLineTable {
    static final String SECTION = ".debug_line";

    private static final int DW_LNCT_PATH = 1;
    private static final int DW_LNCT_DIRECTORY_INDEX = 2;
    /** The {@code unit_length} that says the unit is in the 64-bit DWARF format. */
    private static final long DWARF64_ESCAPE = 0xffffffffL;
    /** The first of the {@code unit_length} values DWARF reserves (up to the 64-bit escape). */
    private static final long RESERVED_LENGTHS = 0xfffffff0L;

    private DebugLineTable() {
    }

    /** A line table that cannot be decoded: the message says where and why. */
    static final class DebugLineException extends Exception {
        private static final long serialVersionUID = 1L;

        DebugLineException(String message) {
            super(message);
        }
    }

    /**
     * The rows of every sequence of the object's {@code .debug_line}, in table order, without the
     * end-of-sequence rows.
     *
     * @param elf the object
     * @param sectionAddresses where the linker placed each loaded section, by section index
     * @param symbolAddresses the absolute address of each symbol, by symbol index
     * @return the rows; empty when the object has no {@code .debug_line}
     * @throws DebugLineException if the table or its relocations are malformed or unsupported
     */
    static List<SourceLine> decode(ElfFile elf, Map<Integer, Long> sectionAddresses, long[] symbolAddresses)
            throws DebugLineException {
        Optional<ElfSection> section = elf.findSection(SECTION);
        if (section.isEmpty()) {
            return List.of();
        }
        byte[] bytes = elf.contents(section.get()).toArray(ValueLayout.JAVA_BYTE);
        ByteBuffer data = ByteBuffer.wrap(bytes).order(elf.byteOrder());
        try {
            relocate(elf, section.get(), data, sectionAddresses, symbolAddresses);
        } catch (ElfFormatException e) {
            throw new DebugLineException(SECTION + ": " + e.getMessage());
        }
        byte[] lineStr = elf.findSection(".debug_line_str").map(s -> elf.contents(s).toArray(ValueLayout.JAVA_BYTE))
                .orElse(new byte[0]);
        byte[] str = elf.findSection(".debug_str").map(s -> elf.contents(s).toArray(ValueLayout.JAVA_BYTE))
                .orElse(new byte[0]);
        List<SourceLine> rows = new ArrayList<>();
        Reader in = new Reader(data, 0, bytes.length, 4);
        while (in.pos < bytes.length) {
            int unitStart = in.pos;
            long length = in.u32();
            int offsetSize = 4;
            if (length == DWARF64_ESCAPE) {
                length = in.u64();
                offsetSize = 8;
            } else if (length >= RESERVED_LENGTHS) {
                throw new DebugLineException(at(unitStart) + "unit_length 0x" + Long.toHexString(length)
                        + " is a reserved value");
            }
            // Unsigned: a 64-bit length with its top bit set is negative here, and runs past too.
            if (length < 0 || length > bytes.length - in.pos) {
                throw new DebugLineException(at(unitStart) + "unit_length " + Long.toUnsignedString(length)
                        + " runs past the section (" + bytes.length + " bytes)");
            }
            Reader unit = new Reader(data, in.pos, in.pos + (int) length, offsetSize);
            in.pos += (int) length;
            unit(unit, unitStart, lineStr, str, rows);
        }
        return List.copyOf(rows);
    }

    private static String at(int offset) {
        return SECTION + " unit at 0x" + Integer.toHexString(offset) + ": ";
    }

    private static void unit(Reader in, int unitStart, byte[] lineStr, byte[] str, List<SourceLine> rows)
            throws DebugLineException {
        int version = in.u16();
        if (version < 2 || version > 5) {
            throw new DebugLineException(at(unitStart) + "version " + version + " is not supported");
        }
        if (version >= 5) {
            int addressSize = in.u8();
            in.u8(); // segment_selector_size
            if (addressSize != 8) {
                throw new DebugLineException(at(unitStart) + "address_size " + addressSize + " is not 8");
            }
        }
        long headerLength = in.offset();
        if (headerLength < 0 || headerLength > in.end - in.pos) {
            throw new DebugLineException(at(unitStart) + "header_length " + Long.toUnsignedString(headerLength)
                    + " runs past the unit");
        }
        int programStart = in.pos + (int) headerLength;
        int minInst = in.u8();
        if (version >= 4) {
            // Above 1 (VLIW), an address advance also moves an op_index that the rows would need.
            int maxOps = in.u8();
            if (maxOps != 1) {
                throw new DebugLineException(at(unitStart) + "maximum_operations_per_instruction " + maxOps
                        + " is not 1");
            }
        }
        in.u8(); // default_is_stmt: every row is kept, statement or not
        int lineBase = (byte) in.u8();
        int lineRange = in.u8();
        int opcodeBase = in.u8();
        if (lineRange == 0) {
            throw new DebugLineException(at(unitStart) + "line_range is 0");
        }
        if (opcodeBase == 0) {
            throw new DebugLineException(at(unitStart) + "opcode_base is 0");
        }
        int[] opcodeLengths = new int[opcodeBase];
        for (int i = 1; i < opcodeBase; i++) {
            opcodeLengths[i] = in.u8();
        }
        List<String> dirs = new ArrayList<>();
        List<String> files = new ArrayList<>();
        if (version >= 5) {
            for (String[] d : entries(in, unitStart, lineStr, str)) {
                dirs.add(d[0] == null ? "" : d[0]);
            }
            for (String[] f : entries(in, unitStart, lineStr, str)) {
                files.add(join(dirs, f[1] == null ? 0 : directoryIndex(f[1], unitStart), f[0] == null ? "" : f[0]));
            }
        } else {
            // include_directories and file_names: strings inline, each list ended by an empty one.
            dirs.add(""); // index 0: the compilation directory, which the line table does not give
            for (String d = in.cstring(); !d.isEmpty(); d = in.cstring()) {
                dirs.add(d);
            }
            files.add(null); // file indexes start at 1: a row of file 0 names no file
            for (String f = in.cstring(); !f.isEmpty(); f = in.cstring()) {
                long dir = in.uleb();
                in.uleb();
                in.uleb();
                files.add(join(dirs, dir, f));
            }
        }
        in.pos = programStart;
        long address = 0;
        long file = 1;
        long line = 1;
        long discriminator = 0;
        while (in.pos < in.end) {
            int op = in.u8();
            if (op >= opcodeBase) {
                int adjusted = op - opcodeBase;
                address += (long) (adjusted / lineRange) * minInst;
                line += lineBase + adjusted % lineRange;
                rows.add(row(unitStart, address, files, file, line, discriminator));
                discriminator = 0;
                continue;
            }
            switch (op) {
                case 0 -> {
                    long len = in.uleb();
                    if (len == 0 || len > in.end - in.pos) {
                        throw new DebugLineException(at(unitStart) + "extended opcode of length " + len + " at 0x"
                                + Integer.toHexString(in.pos) + " runs past the unit");
                    }
                    int next = in.pos + (int) len;
                    int sub = in.u8();
                    switch (sub) {
                        case 1 -> { // DW_LNE_end_sequence
                            address = 0;
                            file = 1;
                            line = 1;
                            discriminator = 0;
                        }
                        case 2 -> { // DW_LNE_set_address
                            if (len != 9) {
                                throw new DebugLineException(at(unitStart) + "DW_LNE_set_address of length " + len);
                            }
                            address = in.u64();
                        }
                        case 3 -> { // DW_LNE_define_file (DWARF 2-4): a file_names entry
                            String name = in.cstring();
                            files.add(join(dirs, in.uleb(), name));
                        }
                        case 4 -> discriminator = in.uleb(); // DW_LNE_set_discriminator
                        default -> {
                            // Vendor extensions: skipped by their length.
                        }
                    }
                    in.pos = next;
                }
                case 1 -> { // DW_LNS_copy
                    rows.add(row(unitStart, address, files, file, line, discriminator));
                    discriminator = 0;
                }
                case 2 -> address += in.uleb() * minInst;
                case 3 -> line += in.sleb();
                case 4 -> file = in.uleb();
                case 8 -> address += (long) ((255 - opcodeBase) / lineRange) * minInst;
                case 9 -> address += in.u16();
                default -> {
                    // set_column, negate_stmt, basic_block, prologue_end, epilogue_begin, set_isa and
                    // unknown standard opcodes: their operands are ULEB128s, as many as the header says.
                    for (int i = 0; i < opcodeLengths[op]; i++) {
                        in.uleb();
                    }
                }
            }
        }
    }

    private static SourceLine row(int unitStart, long address, List<String> files, long file, long line,
            long discriminator) throws DebugLineException {
        if (file < 0 || file >= files.size() || files.get((int) file) == null) {
            throw new DebugLineException(at(unitStart) + "file index " + file + " is not in the table ("
                    + files.size() + " entries)");
        }
        if (line < 0 || line > 0xffffffffL) {
            throw new DebugLineException(at(unitStart) + "line " + line + " is out of range");
        }
        return new SourceLine(address, files.get((int) file), (int) line, (int) discriminator);
    }

    private static String join(List<String> dirs, long dir, String name) throws DebugLineException {
        if (dir < 0 || dir >= dirs.size()) {
            throw new DebugLineException(SECTION + ": directory index " + dir + " of " + name + " is not in the table");
        }
        String d = dirs.get((int) dir);
        return d.isEmpty() || name.startsWith("/") ? name : d + "/" + name;
    }

    private static long directoryIndex(String value, int unitStart) throws DebugLineException {
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new DebugLineException(at(unitStart) + "directory index \"" + value + "\" is not a constant");
        }
    }

    /** A DWARF 5 directory or file name table: per entry {path, directory index or null}. */
    private static List<String[]> entries(Reader in, int unitStart, byte[] lineStr, byte[] str) throws DebugLineException {
        int formatCount = in.u8();
        long[] types = new long[formatCount];
        long[] forms = new long[formatCount];
        for (int i = 0; i < formatCount; i++) {
            types[i] = in.uleb();
            forms[i] = in.uleb();
        }
        long count = in.uleb();
        if (count > in.end - in.pos) {
            throw new DebugLineException(at(unitStart) + count + " entries cannot fit the unit");
        }
        List<String[]> result = new ArrayList<>();
        for (long e = 0; e < count; e++) {
            String[] entry = new String[2];
            for (int i = 0; i < formatCount; i++) {
                String value = form(in, unitStart, forms[i], lineStr, str);
                if (types[i] == DW_LNCT_PATH) {
                    entry[0] = value;
                } else if (types[i] == DW_LNCT_DIRECTORY_INDEX) {
                    entry[1] = value;
                }
            }
            result.add(entry);
        }
        return result;
    }

    /** Reads one attribute value: strings as themselves, constants in decimal, blocks as null. */
    private static String form(Reader in, int unitStart, long form, byte[] lineStr, byte[] str) throws DebugLineException {
        return switch ((int) form) {
            case 0x08 -> in.cstring(); // DW_FORM_string
            case 0x1f -> stringAt(lineStr, in.offset(), ".debug_line_str", unitStart); // DW_FORM_line_strp
            case 0x0e -> stringAt(str, in.offset(), ".debug_str", unitStart); // DW_FORM_strp
            case 0x0f -> Long.toString(in.uleb()); // DW_FORM_udata
            case 0x0b -> Integer.toString(in.u8()); // DW_FORM_data1
            case 0x05 -> Integer.toString(in.u16()); // DW_FORM_data2
            case 0x06 -> Long.toString(in.u32()); // DW_FORM_data4
            case 0x07 -> Long.toString(in.u64()); // DW_FORM_data8
            case 0x1e -> { // DW_FORM_data16 (MD5)
                in.skip(16);
                yield null;
            }
            case 0x09 -> { // DW_FORM_block
                long len = in.uleb();
                if (len > in.end - in.pos) {
                    throw new DebugLineException(at(unitStart) + "DW_FORM_block of " + len + " bytes runs past the unit");
                }
                in.skip((int) len);
                yield null;
            }
            default -> throw new DebugLineException(at(unitStart) + "form 0x" + Long.toHexString(form)
                    + " in an entry format is not supported");
        };
    }

    private static String stringAt(byte[] section, long offset, String name, int unitStart) throws DebugLineException {
        if (offset < 0 || offset >= section.length) {
            throw new DebugLineException(at(unitStart) + "offset 0x" + Long.toHexString(offset) + " is outside " + name
                    + " (" + section.length + " bytes)");
        }
        int end = (int) offset;
        while (end < section.length && section[end] != 0) {
            end++;
        }
        if (end == section.length) {
            throw new DebugLineException(at(unitStart) + "string at 0x" + Long.toHexString(offset) + " of " + name
                    + " has no terminating NUL");
        }
        return new String(section, (int) offset, end - (int) offset, StandardCharsets.UTF_8);
    }

    private static void relocate(ElfFile elf, ElfSection section, ByteBuffer data, Map<Integer, Long> sectionAddresses,
            long[] symbolAddresses) throws ElfFormatException, DebugLineException {
        List<ElfRelocation> relocations = elf.relocationsFor(section);
        if (relocations.isEmpty()) {
            return;
        }
        List<ElfSymbol> symbols = elf.symbols();
        for (ElfRelocation r : relocations) {
            if (r.symbolIndex() < 0 || r.symbolIndex() >= symbols.size()) {
                throw new DebugLineException(SECTION + ": relocation at 0x" + Long.toHexString(r.offset())
                        + " names symbol " + r.symbolIndex() + ", not in the symbol table");
            }
            ElfSymbol symbol = symbols.get(r.symbolIndex());
            Long loaded = sectionAddresses.get(symbol.sectionIndex());
            // A symbol of a loaded section has an address; one of a section that stays in the
            // file (.debug_line_str) is an offset into it.
            long s = loaded == null ? symbol.value()
                    : symbol.type() == ElfSymbol.STT_SECTION ? loaded + symbol.value() : symbolAddresses[r.symbolIndex()];
            long value = s + r.addend();
            int size = switch (r.type()) {
                case ElfRelocation.R_X86_64_64 -> 8;
                case X86Relocations.R_X86_64_32 -> 4;
                default -> throw new DebugLineException(SECTION + ": relocation type " + r.type() + " at 0x"
                        + Long.toHexString(r.offset()) + " is not supported");
            };
            if (r.offset() < 0 || r.offset() > data.limit() - size) {
                throw new DebugLineException(SECTION + ": relocation at 0x" + Long.toHexString(r.offset())
                        + " is outside the section (" + data.limit() + " bytes)");
            }
            if (size == 8) {
                data.putLong((int) r.offset(), value);
            } else {
                if (value < 0 || value > 0xffffffffL) {
                    throw new DebugLineException(SECTION + ": R_X86_64_32 value 0x" + Long.toHexString(value)
                            + " at 0x" + Long.toHexString(r.offset()) + " does not fit");
                }
                data.putInt((int) r.offset(), (int) value);
            }
        }
    }

    /**
     * A bounds-checked cursor over {@code [pos, end)} of the relocated section, with the offset size
     * of the unit it reads: 4 in the 32-bit DWARF format, 8 in the 64-bit one.
     */
    private static final class Reader {
        private final ByteBuffer data;
        int pos;
        final int end;
        private final int offsetSize;

        Reader(ByteBuffer data, int pos, int end, int offsetSize) {
            this.data = data;
            this.pos = pos;
            this.end = end;
            this.offsetSize = offsetSize;
        }

        /** A length or section offset field: {@code header_length}, {@code DW_FORM_line_strp}, ... */
        long offset() throws DebugLineException {
            return offsetSize == 8 ? u64() : u32();
        }

        private void need(int n) throws DebugLineException {
            if (n > end - pos) {
                throw new DebugLineException(SECTION + ": a field of " + n + " bytes at 0x" + Integer.toHexString(pos)
                        + " runs past its unit (ends at 0x" + Integer.toHexString(end) + ")");
            }
        }

        void skip(int n) throws DebugLineException {
            need(n);
            pos += n;
        }

        int u8() throws DebugLineException {
            need(1);
            return data.get(pos++) & 0xff;
        }

        int u16() throws DebugLineException {
            need(2);
            int v = data.getShort(pos) & 0xffff;
            pos += 2;
            return v;
        }

        long u32() throws DebugLineException {
            need(4);
            long v = data.getInt(pos) & 0xffffffffL;
            pos += 4;
            return v;
        }

        long u64() throws DebugLineException {
            need(8);
            long v = data.getLong(pos);
            pos += 8;
            return v;
        }

        long uleb() throws DebugLineException {
            long result = 0;
            for (int shift = 0;; shift += 7) {
                int b = u8();
                if (shift < 64) {
                    result |= (long) (b & 0x7f) << shift;
                }
                if ((b & 0x80) == 0) {
                    return result;
                }
            }
        }

        long sleb() throws DebugLineException {
            long result = 0;
            int shift = 0;
            int b;
            do {
                b = u8();
                if (shift < 64) {
                    result |= (long) (b & 0x7f) << shift;
                }
                shift += 7;
            } while ((b & 0x80) != 0);
            if (shift < 64 && (b & 0x40) != 0) {
                result |= -1L << shift;
            }
            return result;
        }

        String cstring() throws DebugLineException {
            int start = pos;
            while (true) {
                if (u8() == 0) {
                    return new String(data.array(), start, pos - 1 - start, StandardCharsets.UTF_8);
                }
            }
        }
    }
}
