package dev.safepointkit.stackmap.macho;

import dev.safepointkit.stackmap.ObjectFormatException;
import dev.safepointkit.stackmap.internal.ByteReader;
import dev.safepointkit.stackmap.internal.Extents;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A 64-bit little-endian Mach-O file (x86-64 or arm64), read in place: its sections and symbol
 * table, and each section's relocations.
 *
 * <p>{@link #parse} checks the header, every load command, every section's bytes and relocation
 * entries, and the symbol and string tables against the file before it keeps anything; the
 * symbols are read then too, so the getters cannot fail. Immutable; safe to share between threads
 * while the image stays valid and unwritten.
 */
public final class MachOFile {
    /** {@code MH_MAGIC_64}, read little endian. */
    public static final int MH_MAGIC_64 = 0xFEEDFACF;
    /** {@code MH_OBJECT}: a relocatable object. */
    public static final int MH_OBJECT = 1;
    /** {@code CPU_TYPE_X86_64}. */
    public static final int CPU_TYPE_X86_64 = 0x01000007;
    /** {@code CPU_TYPE_ARM64}. */
    public static final int CPU_TYPE_ARM64 = 0x0100000C;

    private static final String FORMAT = "Mach-O";
    private static final int MH_CIGAM_64 = 0xCFFAEDFE;
    private static final int HEADER_SIZE = 32;
    private static final int CPUTYPE = 4;
    private static final int FILETYPE = 12;
    private static final int NCMDS = 16;
    private static final int SIZEOFCMDS = 20;
    private static final int LC_SYMTAB = 0x2;
    private static final int LC_SEGMENT_64 = 0x19;
    private static final int LOAD_COMMAND_SIZE = 8;
    private static final int SEGMENT_SIZE = 72;
    private static final int SEGMENT_NSECTS = 64;
    private static final int SECTION_SIZE = 80;
    private static final int SYMTAB_SIZE = 24;
    private static final int NLIST_SIZE = 16;
    private static final int RELOCATION_SIZE = 8;
    private static final int NAME_SIZE = 16;
    private static final int R_SCATTERED = 0x80000000;

    private final ByteReader in;
    private final int cpuType;
    private final int fileType;
    private final List<MachOSection> sections;
    private final List<MachOSymbol> symbols;

    private MachOFile(ByteReader in, int cpuType, int fileType, List<MachOSection> sections, List<MachOSymbol> symbols) {
        this.in = in;
        this.cpuType = cpuType;
        this.fileType = fileType;
        this.sections = sections;
        this.symbols = symbols;
    }

    /**
     * Whether {@code image} starts with the 64-bit Mach-O magic, in either byte order.
     *
     * @param image the file's bytes
     * @return true when the first four bytes are {@code MH_MAGIC_64} or its byte swap
     */
    public static boolean hasMagic(MemorySegment image) {
        if (image.byteSize() < 4) {
            return false;
        }
        int magic = new ByteReader(image, ByteOrder.LITTLE_ENDIAN).i32(0);
        return magic == MH_MAGIC_64 || magic == MH_CIGAM_64;
    }

    /**
     * Reads and checks a Mach-O file. Nothing is copied but names.
     *
     * @param image the whole file; it must stay valid and unwritten while the result is used
     * @return the file
     * @throws ObjectFormatException if it is not a 64-bit little-endian x86-64 or arm64 Mach-O
     *     file, or any header, load command, section, relocation table, symbol or string points
     *     outside the file or overlaps what contains it
     */
    public static MachOFile parse(MemorySegment image) throws ObjectFormatException {
        ByteReader in = new ByteReader(image, ByteOrder.LITTLE_ENDIAN);
        Extents file = new Extents(FORMAT, in.size());
        file.require(0, HEADER_SIZE, 0, "mach_header_64");
        int magic = in.i32(0);
        if (magic != MH_MAGIC_64) {
            throw file.error(0, "mach_header_64.magic", magic == MH_CIGAM_64
                    ? "big-endian Mach-O is not supported" : "0x" + Integer.toHexString(magic) + " is not MH_MAGIC_64");
        }
        int cpuType = in.i32(CPUTYPE);
        if (cpuType != CPU_TYPE_X86_64 && cpuType != CPU_TYPE_ARM64) {
            throw file.error(CPUTYPE, "mach_header_64.cputype", "CPU type 0x" + Integer.toHexString(cpuType)
                    + " is neither x86-64 nor arm64");
        }
        long commandCount = in.u32(NCMDS);
        long commandsSize = in.u32(SIZEOFCMDS);
        file.require(HEADER_SIZE, commandsSize, SIZEOFCMDS, "mach_header_64.sizeofcmds");
        long commandsEnd = HEADER_SIZE + commandsSize;
        // Every command takes at least 8 bytes, which bounds the loop by the bytes present.
        if (commandCount * LOAD_COMMAND_SIZE > commandsSize) {
            throw file.error(NCMDS, "mach_header_64.ncmds", commandCount + " load commands cannot fit in sizeofcmds="
                    + commandsSize);
        }
        List<MachOSection> sections = new ArrayList<>();
        List<MachOSymbol> symbols = List.of();
        boolean haveSymtab = false;
        long at = HEADER_SIZE;
        for (long c = 0; c < commandCount; c++) {
            String name = "load_command[" + c + "]";
            if (at + LOAD_COMMAND_SIZE > commandsEnd) {
                throw file.error(at, name, "starts past the end of the load commands (sizeofcmds=" + commandsSize + ")");
            }
            int cmd = in.i32(at);
            long size = in.u32(at + 4);
            if (size < LOAD_COMMAND_SIZE || size % 8 != 0 || at + size > commandsEnd) {
                throw file.error(at + 4, name + ".cmdsize", "cmdsize " + size
                        + " is not a multiple of 8 of at least 8 that ends inside the load commands");
            }
            if (cmd == LC_SEGMENT_64) {
                readSegment(in, file, at, size, name, sections);
            } else if (cmd == LC_SYMTAB) {
                if (haveSymtab) {
                    throw file.error(at, name, "a second LC_SYMTAB");
                }
                haveSymtab = true;
                symbols = readSymbols(in, file, at, size, name);
            }
            at += size;
        }
        for (MachOSymbol s : symbols) {
            if (s.isDefinedInSection() && (s.section() < 1 || s.section() > sections.size())) {
                throw file.error(0, "nlist_64[" + s.index() + "].n_sect", "section " + s.section() + " of "
                        + sections.size() + " does not exist");
            }
        }
        return new MachOFile(in, cpuType, in.i32(FILETYPE), List.copyOf(sections), symbols);
    }

    private static void readSegment(ByteReader in, Extents file, long at, long size, String name,
            List<MachOSection> sections) throws ObjectFormatException {
        if (size < SEGMENT_SIZE) {
            throw file.error(at + 4, name + ".cmdsize", "an LC_SEGMENT_64 needs " + SEGMENT_SIZE + " bytes, cmdsize is " + size);
        }
        long count = in.u32(at + SEGMENT_NSECTS);
        if (SEGMENT_SIZE + count * SECTION_SIZE > size) {
            throw file.error(at + SEGMENT_NSECTS, name + ".nsects", count + " sections do not fit in cmdsize " + size);
        }
        for (int s = 0; s < count; s++) {
            long h = at + SEGMENT_SIZE + (long) s * SECTION_SIZE;
            int ordinal = sections.size() + 1;
            String field = "section_64[" + ordinal + "]";
            long sectionSize = in.u64(h + 40);
            long offset = in.u32(h + 48);
            long relocationOffset = in.u32(h + 56);
            long relocationCount = in.u32(h + 60);
            int flags = in.i32(h + 64);
            MachOSection section = new MachOSection(ordinal, Extents.fixedName(in, h + NAME_SIZE, NAME_SIZE),
                    Extents.fixedName(in, h, NAME_SIZE), in.u64(h + 32), sectionSize, offset, relocationOffset,
                    (int) relocationCount, flags);
            if (section.hasFileBytes()) {
                if (sectionSize < 0) {
                    throw file.error(h + 40, field + ".size", "size " + Long.toUnsignedString(sectionSize) + " is too large");
                }
                file.require(offset, sectionSize, h + 48, field + ".offset");
            }
            file.require(relocationOffset, relocationCount * RELOCATION_SIZE, h + 56, field + ".reloff");
            sections.add(section);
        }
    }

    private static List<MachOSymbol> readSymbols(ByteReader in, Extents file, long at, long size, String name)
            throws ObjectFormatException {
        if (size < SYMTAB_SIZE) {
            throw file.error(at + 4, name + ".cmdsize", "an LC_SYMTAB needs " + SYMTAB_SIZE + " bytes, cmdsize is " + size);
        }
        long symbolsOffset = in.u32(at + 8);
        long count = in.u32(at + 12);
        long stringsOffset = in.u32(at + 16);
        long stringsSize = in.u32(at + 20);
        file.require(symbolsOffset, count * NLIST_SIZE, at + 8, name + ".symoff");
        file.require(stringsOffset, stringsSize, at + 16, name + ".stroff");
        List<MachOSymbol> symbols = new ArrayList<>((int) count);
        for (int i = 0; i < count; i++) {
            long e = symbolsOffset + (long) i * NLIST_SIZE;
            String field = "nlist_64[" + i + "]";
            String symbolName = file.tableString(in, stringsOffset, stringsSize, in.u32(e), e, field + ".n_strx");
            symbols.add(new MachOSymbol(i, symbolName, in.u8(e + 4), in.u8(e + 5), in.u64(e + 8)));
        }
        return List.copyOf(symbols);
    }

    /**
     * The CPU type from the header.
     *
     * @return {@link #CPU_TYPE_X86_64} or {@link #CPU_TYPE_ARM64}
     */
    public int cpuType() {
        return cpuType;
    }

    /**
     * The file type from the header.
     *
     * @return e.g. {@link #MH_OBJECT} for a relocatable object
     */
    public int fileType() {
        return fileType;
    }

    /**
     * The format as {@code llvm-readobj} names it.
     *
     * @return {@code Mach-O 64-bit x86-64} or {@code Mach-O arm64}
     */
    public String formatName() {
        return cpuType == CPU_TYPE_X86_64 ? "Mach-O 64-bit x86-64" : "Mach-O arm64";
    }

    /**
     * The architecture as {@code llvm-readobj} names it.
     *
     * @return {@code x86_64} or {@code aarch64}
     */
    public String archName() {
        return cpuType == CPU_TYPE_X86_64 ? "x86_64" : "aarch64";
    }

    /**
     * Every section, in load-command order.
     *
     * @return an unmodifiable list; entry {@code i} has ordinal {@code i + 1}
     */
    public List<MachOSection> sections() {
        return sections;
    }

    /**
     * The first section with this segment and section name.
     *
     * @param segment e.g. {@code __LLVM_STACKMAPS}
     * @param name e.g. {@code __llvm_stackmaps}
     * @return the section, or empty
     */
    public Optional<MachOSection> findSection(String segment, String name) {
        return sections.stream().filter(s -> s.segment().equals(segment) && s.name().equals(name)).findFirst();
    }

    /**
     * The bytes of a section, in place.
     *
     * @param section one of {@link #sections()} with {@link MachOSection#hasFileBytes()}
     * @return a slice of the image
     */
    public MemorySegment contents(MachOSection section) {
        return in.segment().asSlice(section.fileOffset(), section.size());
    }

    /**
     * The symbol table; empty without an LC_SYMTAB.
     *
     * @return an unmodifiable list in table order
     */
    public List<MachOSymbol> symbols() {
        return symbols;
    }

    /**
     * The relocation entries of a section (checked to lie in the file by {@link #parse}).
     *
     * @param section one of {@link #sections()}
     * @return the entries in file order
     * @throws ObjectFormatException if an entry is scattered (not used on x86-64 or arm64), or names
     *     a symbol or section that does not exist
     */
    public List<MachORelocation> relocations(MachOSection section) throws ObjectFormatException {
        Extents file = new Extents(FORMAT, in.size());
        List<MachORelocation> result = new ArrayList<>(section.relocationCount());
        for (int i = 0; i < section.relocationCount(); i++) {
            long e = section.relocationOffset() + (long) i * RELOCATION_SIZE;
            String field = section.name() + " relocation_info[" + i + "]";
            int address = in.i32(e);
            if ((address & R_SCATTERED) != 0) {
                throw file.error(e, field + ".r_address", "scattered relocations are not used on x86-64 or arm64");
            }
            int info = in.i32(e + 4);
            MachORelocation r = new MachORelocation(address, info & 0xFFFFFF, (info >>> 24 & 1) != 0, info >>> 25 & 3,
                    (info >>> 27 & 1) != 0, info >>> 28);
            int limit = r.external() ? symbols.size() : sections.size() + 1;
            if (r.symbolOrSection() >= limit || !r.external() && r.symbolOrSection() == 0) {
                throw file.error(e + 4, field + ".r_symbolnum", (r.external() ? "symbol " : "section ")
                        + r.symbolOrSection() + " does not exist");
            }
            result.add(r);
        }
        return result;
    }
}
