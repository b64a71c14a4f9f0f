package dev.safepointkit.stackmap.coff;

import dev.safepointkit.stackmap.ObjectFormatException;
import dev.safepointkit.stackmap.internal.ByteReader;
import dev.safepointkit.stackmap.internal.Extents;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A COFF object file (x86-64 or ARM64, as {@code llc} writes for Windows), read in place: its
 * sections, symbols and each section's relocations.
 *
 * <p>{@link #parse} checks the header, the section table, every section's bytes and relocations,
 * the symbol table with its auxiliary entries and the string table against the file, and reads
 * every name, before it keeps anything. Immutable; safe to share between threads while the image
 * stays valid and unwritten.
 */
public final class CoffFile {
    /** IMAGE_FILE_MACHINE_AMD64. */
    public static final int IMAGE_FILE_MACHINE_AMD64 = 0x8664;
    /** IMAGE_FILE_MACHINE_ARM64. */
    public static final int IMAGE_FILE_MACHINE_ARM64 = 0xAA64;

    private static final String FORMAT = "COFF";
    private static final int HEADER_SIZE = 20;
    private static final int NUMBER_OF_SECTIONS = 2;
    private static final int POINTER_TO_SYMBOL_TABLE = 8;
    private static final int NUMBER_OF_SYMBOLS = 12;
    private static final int SIZE_OF_OPTIONAL_HEADER = 16;
    private static final int SECTION_SIZE = 40;
    private static final int SYMBOL_SIZE = 18;
    private static final int RELOCATION_SIZE = 10;
    private static final int SHORT_NAME = 8;
    private static final int IMAGE_SCN_LNK_NRELOC_OVFL = 0x01000000;

    private final ByteReader in;
    private final int machine;
    private final List<CoffSection> sections;
    /** Indexed by symbol table index; null at auxiliary entries. */
    private final CoffSymbol[] symbolsByIndex;
    private final List<CoffSymbol> symbols;

    private CoffFile(ByteReader in, int machine, List<CoffSection> sections, CoffSymbol[] symbolsByIndex) {
        this.in = in;
        this.machine = machine;
        this.sections = sections;
        this.symbolsByIndex = symbolsByIndex;
        List<CoffSymbol> all = new ArrayList<>();
        for (CoffSymbol s : symbolsByIndex) {
            if (s != null) {
                all.add(s);
            }
        }
        this.symbols = List.copyOf(all);
    }

    /**
     * Whether {@code image} starts like a COFF object of a machine this reader knows (COFF has no
     * magic number: the Machine field is what tells it).
     *
     * @param image the file's bytes
     * @return true when the header is present and its Machine is AMD64 or ARM64
     */
    public static boolean hasKnownMachine(MemorySegment image) {
        if (image.byteSize() < HEADER_SIZE) {
            return false;
        }
        int machine = new ByteReader(image, ByteOrder.LITTLE_ENDIAN).u16(0);
        return machine == IMAGE_FILE_MACHINE_AMD64 || machine == IMAGE_FILE_MACHINE_ARM64;
    }

    /**
     * Reads and checks a COFF object.
     *
     * @param image the whole file; it must stay valid and unwritten while the result is used
     * @return the file
     * @throws ObjectFormatException if it is not an AMD64 or ARM64 COFF object, or a section,
     *     relocation table, symbol, auxiliary entry or name points outside the file
     */
    public static CoffFile parse(MemorySegment image) throws ObjectFormatException {
        ByteReader in = new ByteReader(image, ByteOrder.LITTLE_ENDIAN);
        Extents file = new Extents(FORMAT, in.size());
        file.require(0, HEADER_SIZE, 0, "IMAGE_FILE_HEADER");
        int machine = in.u16(0);
        if (machine != IMAGE_FILE_MACHINE_AMD64 && machine != IMAGE_FILE_MACHINE_ARM64) {
            throw file.error(0, "IMAGE_FILE_HEADER.Machine", "machine 0x" + Integer.toHexString(machine)
                    + " is neither AMD64 nor ARM64");
        }
        int sectionCount = in.u16(NUMBER_OF_SECTIONS);
        long symbolTable = in.u32(POINTER_TO_SYMBOL_TABLE);
        long symbolCount = in.u32(NUMBER_OF_SYMBOLS);
        long sectionTable = HEADER_SIZE + in.u16(SIZE_OF_OPTIONAL_HEADER);
        file.require(sectionTable, (long) sectionCount * SECTION_SIZE, NUMBER_OF_SECTIONS, "IMAGE_FILE_HEADER.NumberOfSections");
        file.require(symbolTable, symbolCount * SYMBOL_SIZE, NUMBER_OF_SYMBOLS, "IMAGE_FILE_HEADER.NumberOfSymbols");
        long strings = symbolTable + symbolCount * SYMBOL_SIZE;
        long stringsSize = 0;
        if (symbolCount > 0) {
            file.require(strings, 4, POINTER_TO_SYMBOL_TABLE, "string table size");
            stringsSize = in.u32(strings);
            if (stringsSize < 4) {
                throw file.error(strings, "string table size", "size " + stringsSize + " is below the 4 bytes of the size itself");
            }
            file.require(strings, stringsSize, strings, "string table size");
        }
        List<CoffSection> sections = new ArrayList<>(sectionCount);
        for (int s = 0; s < sectionCount; s++) {
            sections.add(readSection(in, file, sectionTable + (long) s * SECTION_SIZE, s + 1, strings, stringsSize));
        }
        CoffSymbol[] symbols = new CoffSymbol[(int) symbolCount];
        for (int i = 0; i < symbolCount; i++) {
            long e = symbolTable + (long) i * SYMBOL_SIZE;
            String field = "symbol[" + i + "]";
            String name = in.i32(e) == 0
                    ? file.tableString(in, strings, stringsSize, in.u32(e + 4), e + 4, field + ".Name")
                    : Extents.fixedName(in, e, SHORT_NAME);
            int section = (short) in.u16(e + 12);
            if (section > sectionCount) {
                throw file.error(e + 12, field + ".SectionNumber", "section " + section + " of " + sectionCount
                        + " does not exist");
            }
            int aux = in.u8(e + 17);
            if (i + aux >= symbolCount) {
                throw file.error(e + 17, field + ".NumberOfAuxSymbols", aux + " auxiliary entries run past the "
                        + symbolCount + " of the symbol table");
            }
            symbols[i] = new CoffSymbol(i, name, in.u32(e + 8), section, in.u16(e + 14), in.u8(e + 16));
            i += aux;
        }
        return new CoffFile(in, machine, List.copyOf(sections), symbols);
    }

    private static CoffSection readSection(ByteReader in, Extents file, long h, int number, long strings, long stringsSize)
            throws ObjectFormatException {
        String field = "section[" + number + "]";
        String name = Extents.fixedName(in, h, SHORT_NAME);
        if (name.startsWith("/")) {
            long index;
            try {
                index = Long.parseLong(name.substring(1));
            } catch (NumberFormatException e) {
                throw file.error(h, field + ".Name", "long name reference '" + name + "' is not a decimal offset");
            }
            name = file.tableString(in, strings, stringsSize, index, h, field + ".Name");
        }
        long size = in.u32(h + 16);
        long data = in.u32(h + 20);
        long relocations = in.u32(h + 24);
        int relocationCount = in.u16(h + 32);
        int characteristics = in.i32(h + 36);
        if ((characteristics & IMAGE_SCN_LNK_NRELOC_OVFL) != 0) {
            throw file.error(h + 36, field + ".Characteristics", "more than 65535 relocations (IMAGE_SCN_LNK_NRELOC_OVFL) are not supported");
        }
        CoffSection section = new CoffSection(number, name, size, data, relocations, relocationCount, characteristics);
        if (section.hasFileBytes()) {
            file.require(data, size, h + 20, field + ".PointerToRawData");
        }
        file.require(relocations, (long) relocationCount * RELOCATION_SIZE, h + 24, field + ".PointerToRelocations");
        return section;
    }

    /**
     * The Machine field.
     *
     * @return {@link #IMAGE_FILE_MACHINE_AMD64} or {@link #IMAGE_FILE_MACHINE_ARM64}
     */
    public int machine() {
        return machine;
    }

    /**
     * The format as {@code llvm-readobj} names it.
     *
     * @return {@code COFF-x86-64} or {@code COFF-ARM64}
     */
    public String formatName() {
        return machine == IMAGE_FILE_MACHINE_AMD64 ? "COFF-x86-64" : "COFF-ARM64";
    }

    /**
     * The architecture as {@code llvm-readobj} names it.
     *
     * @return {@code x86_64} or {@code aarch64}
     */
    public String archName() {
        return machine == IMAGE_FILE_MACHINE_AMD64 ? "x86_64" : "aarch64";
    }

    /**
     * Every section, in table order.
     *
     * @return an unmodifiable list; entry {@code i} is section number {@code i + 1}
     */
    public List<CoffSection> sections() {
        return sections;
    }

    /**
     * The first section with this name.
     *
     * @param name e.g. {@code .llvm_stackmaps}
     * @return the section, or empty
     */
    public Optional<CoffSection> findSection(String name) {
        return sections.stream().filter(s -> s.name().equals(name)).findFirst();
    }

    /**
     * The bytes of a section, in place.
     *
     * @param section one of {@link #sections()} with {@link CoffSection#hasFileBytes()}
     * @return a slice of the image
     */
    public MemorySegment contents(CoffSection section) {
        return in.segment().asSlice(section.rawDataOffset(), section.rawDataSize());
    }

    /**
     * The symbols, auxiliary entries left out.
     *
     * @return an unmodifiable list in table order
     */
    public List<CoffSymbol> symbols() {
        return symbols;
    }

    /**
     * The symbol at a symbol table index, as a relocation names it.
     *
     * @param index the index
     * @return the symbol, or empty when the index is out of range or falls on an auxiliary entry
     */
    public Optional<CoffSymbol> symbolAt(long index) {
        return index >= 0 && index < symbolsByIndex.length ? Optional.ofNullable(symbolsByIndex[(int) index]) : Optional.empty();
    }

    /**
     * The relocations of a section (checked to lie in the file by {@link #parse}).
     *
     * @param section one of {@link #sections()}
     * @return the entries in file order
     * @throws ObjectFormatException if one names no symbol (out of range or an auxiliary entry)
     */
    public List<CoffRelocation> relocations(CoffSection section) throws ObjectFormatException {
        List<CoffRelocation> result = new ArrayList<>(section.relocationCount());
        for (int i = 0; i < section.relocationCount(); i++) {
            long e = section.relocationOffset() + (long) i * RELOCATION_SIZE;
            CoffRelocation r = new CoffRelocation(in.u32(e), in.u32(e + 4), in.u16(e + 8));
            if (symbolAt(r.symbolIndex()).isEmpty()) {
                throw new ObjectFormatException(FORMAT, e + 4, section.name() + " relocation[" + i + "].SymbolTableIndex",
                        "symbol index " + r.symbolIndex() + " names no symbol (the table has " + symbolsByIndex.length
                                + " entries, auxiliary ones included)");
            }
            result.add(r);
        }
        return result;
    }
}
