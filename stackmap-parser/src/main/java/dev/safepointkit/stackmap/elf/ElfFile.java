package dev.safepointkit.stackmap.elf;

import dev.safepointkit.stackmap.internal.ByteReader;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * An ELF64 file read in place from a {@link MemorySegment}: header, section headers, symbols,
 * RELA relocations and the dynamic section's DT_SONAME. Either byte order.
 *
 * <p>{@link #parse} checks the header and every section header against the file size, so section
 * contents can be sliced without further checks; symbol and relocation tables are checked when
 * read. Immutable; safe to share between threads while the segment stays valid and unwritten.
 */
public final class ElfFile {
    /** {@code e_type} of a relocatable object ({@code .o}). */
    public static final int ET_REL = 1;
    /** {@code e_type} of an executable linked at a fixed address. */
    public static final int ET_EXEC = 2;
    /** {@code e_type} of a shared object or position-independent executable. */
    public static final int ET_DYN = 3;

    /** {@code e_machine} of x86-64. */
    public static final int EM_X86_64 = 62;
    /** {@code e_machine} of AArch64. */
    public static final int EM_AARCH64 = 183;

    private static final int ELF_MAGIC = 0x7f454c46;
    private static final int EI_CLASS = 4;
    private static final int EI_DATA = 5;
    private static final int ELFCLASS64 = 2;
    private static final int ELFDATA2LSB = 1;
    private static final int ELFDATA2MSB = 2;
    private static final int EHDR_SIZE = 64;
    private static final int E_TYPE = 16;
    private static final int E_MACHINE = 18;
    private static final int E_SHOFF = 40;
    private static final int E_SHENTSIZE = 58;
    private static final int E_SHNUM = 60;
    private static final int E_SHSTRNDX = 62;
    private static final int SHDR_SIZE = 64;
    private static final int SH_ADDR = 16;
    private static final int SYM_SIZE = 24;
    private static final int RELA_SIZE = 24;
    private static final int DYN_SIZE = 16;
    private static final int SHN_XINDEX = 0xffff;
    private static final long DT_NULL = 0;
    private static final long DT_SONAME = 14;

    private final ByteReader in;
    private final int type;
    private final int machine;
    private final List<ElfSection> sections;

    private ElfFile(ByteReader in, int type, int machine, List<ElfSection> sections) {
        this.in = in;
        this.type = type;
        this.machine = machine;
        this.sections = sections;
    }

    /**
     * Whether {@code image} starts with the ELF magic number (nothing else is checked).
     *
     * @param image the file's bytes
     * @return true when its first four bytes are 0x7f 'E' 'L' 'F'
     */
    public static boolean hasMagic(MemorySegment image) {
        return image.byteSize() >= 4 && new ByteReader(image, ByteOrder.BIG_ENDIAN).i32(0) == ELF_MAGIC;
    }

    /**
     * Reads the ELF header and the section header table of {@code image}, and the section names.
     * Nothing is copied but the names.
     *
     * @param image the whole file; it must stay valid and unwritten while the result and the
     *     segments it hands out are used
     * @return the file, with its sections (none when {@code e_shoff} is 0)
     * @throws ElfFormatException if {@code image} is not ELF64 in either byte order, the section
     *     headers or a section's bytes lie outside it, or a section name is out of its table
     */
    public static ElfFile parse(MemorySegment image) throws ElfFormatException {
        long size = image.byteSize();
        if (size < EHDR_SIZE || new ByteReader(image, ByteOrder.BIG_ENDIAN).i32(0) != ELF_MAGIC) {
            throw new ElfFormatException(0, "e_ident", size < 4 ? "file of " + size + " bytes is too short to be ELF"
                    : size < EHDR_SIZE ? "file of " + size + " bytes is shorter than an ELF64 header" : "not an ELF file (bad magic)");
        }
        ByteReader probe = new ByteReader(image, ByteOrder.LITTLE_ENDIAN);
        int elfClass = probe.u8(EI_CLASS);
        if (elfClass != ELFCLASS64) {
            throw new ElfFormatException(EI_CLASS, "e_ident[EI_CLASS]",
                    elfClass == 1 ? "ELF32 files are not supported" : "unknown ELF class " + elfClass);
        }
        int data = probe.u8(EI_DATA);
        ByteOrder order = switch (data) {
            case ELFDATA2LSB -> ByteOrder.LITTLE_ENDIAN;
            case ELFDATA2MSB -> ByteOrder.BIG_ENDIAN;
            default -> throw new ElfFormatException(EI_DATA, "e_ident[EI_DATA]", "unknown data encoding " + data);
        };
        ByteReader in = new ByteReader(image, order);
        int type = in.u16(E_TYPE);
        int machine = in.u16(E_MACHINE);
        long shoff = in.u64(E_SHOFF);
        int shentsize = in.u16(E_SHENTSIZE);
        long shnum = in.u16(E_SHNUM);
        int shstrndx = in.u16(E_SHSTRNDX);
        if (shoff == 0) {
            return new ElfFile(in, type, machine, List.of());
        }
        if (shentsize != SHDR_SIZE) {
            throw new ElfFormatException(E_SHENTSIZE, "e_shentsize", "section header size " + shentsize + ", expected " + SHDR_SIZE);
        }
        if (Long.compareUnsigned(shoff, size - SHDR_SIZE) > 0) {
            throw new ElfFormatException(E_SHOFF, "e_shoff", "section headers at " + Long.toUnsignedString(shoff)
                    + " lie outside the file of " + size + " bytes");
        }
        // With 0xff00 sections or more the real counts live in section header 0.
        if (shnum == 0) {
            shnum = in.u64(shoff + 32);
        }
        if (shstrndx == SHN_XINDEX) {
            shstrndx = in.i32(shoff + 40);
        }
        if (Long.compareUnsigned(shnum, (size - shoff) / SHDR_SIZE) > 0) {
            throw new ElfFormatException(E_SHNUM, "e_shnum", Long.toUnsignedString(shnum) + " section headers of "
                    + SHDR_SIZE + " bytes from byte " + shoff + " overflow the file of " + size + " bytes");
        }
        if (shstrndx < 0 || shstrndx >= shnum) {
            throw new ElfFormatException(E_SHSTRNDX, "e_shstrndx", "section name table index " + shstrndx
                    + " is not one of the " + shnum + " sections");
        }
        long[] raw = new long[(int) shnum * 10];
        for (int i = 0; i < shnum; i++) {
            long h = shoff + (long) i * SHDR_SIZE;
            int shType = in.i32(h + 4);
            long offset = in.u64(h + 24);
            long secSize = in.u64(h + 32);
            if (shType != ElfSection.SHT_NOBITS && shType != ElfSection.SHT_NULL
                    && (Long.compareUnsigned(offset, size) > 0 || Long.compareUnsigned(secSize, size - offset) > 0)) {
                throw new ElfFormatException(h + 24, "section[" + i + "].sh_offset/sh_size", "bytes ["
                        + Long.toUnsignedString(offset) + ", +" + Long.toUnsignedString(secSize)
                        + ") lie outside the file of " + size + " bytes");
            }
            int b = i * 10;
            raw[b] = in.u32(h);             // sh_name
            raw[b + 1] = shType;
            raw[b + 2] = in.u64(h + 8);     // sh_flags
            raw[b + 3] = in.u64(h + 16);    // sh_addr
            raw[b + 4] = offset;
            raw[b + 5] = secSize;
            raw[b + 6] = in.u32(h + 40);    // sh_link
            raw[b + 7] = in.u32(h + 44);    // sh_info
            raw[b + 8] = in.u64(h + 48);    // sh_addralign
            raw[b + 9] = in.u64(h + 56);    // sh_entsize
        }
        int namesType = (int) raw[shstrndx * 10 + 1];
        if (namesType == ElfSection.SHT_NOBITS || namesType == ElfSection.SHT_NULL) {
            throw new ElfFormatException(E_SHSTRNDX, "e_shstrndx", "section name table " + shstrndx + " has no bytes in the file");
        }
        long namesOffset = raw[shstrndx * 10 + 4];
        long namesSize = raw[shstrndx * 10 + 5];
        List<ElfSection> sections = new ArrayList<>((int) shnum);
        for (int i = 0; i < shnum; i++) {
            int b = i * 10;
            String name = i == 0 ? "" : string(in, namesOffset, namesSize, raw[b],
                    shoff + (long) i * SHDR_SIZE, "section[" + i + "].sh_name");
            sections.add(new ElfSection(i, name, (int) raw[b + 1], raw[b + 2], raw[b + 3], raw[b + 4], raw[b + 5],
                    (int) raw[b + 6], (int) raw[b + 7], raw[b + 8], raw[b + 9]));
        }
        return new ElfFile(in, type, machine, List.copyOf(sections));
    }

    /** Reads the NUL-terminated string at {@code index} of the string table at [tableOffset, +tableSize). */
    private static String string(ByteReader in, long tableOffset, long tableSize, long index, long fieldOffset,
            String field) throws ElfFormatException {
        if (Long.compareUnsigned(index, tableSize) >= 0) {
            throw new ElfFormatException(fieldOffset, field, "name offset " + index + " is outside its string table of "
                    + tableSize + " bytes");
        }
        long start = tableOffset + index;
        long end = start;
        long limit = tableOffset + tableSize;
        while (end < limit && in.u8(end) != 0) {
            end++;
        }
        if (end == limit) {
            throw new ElfFormatException(fieldOffset, field, "name at string table offset " + index + " is not NUL-terminated");
        }
        return new String(in.segment().asSlice(start, end - start).toArray(ValueLayout.JAVA_BYTE),
                StandardCharsets.UTF_8);
    }

    /**
     * The file's bytes.
     *
     * @return the segment given to {@link #parse}
     */
    public MemorySegment image() {
        return in.segment();
    }

    /**
     * The byte order of every multi-byte field, from {@code e_ident[EI_DATA]}.
     *
     * @return little- or big-endian
     */
    public ByteOrder byteOrder() {
        return in.order();
    }

    /**
     * {@code e_type}: {@link #ET_REL}, {@link #ET_EXEC}, {@link #ET_DYN}, ...
     *
     * @return the u16 field as stored, not checked against the known types
     */
    public int type() {
        return type;
    }

    /**
     * Whether this is a relocatable object, whose addresses are section-relative and whose
     * stack map function addresses come from relocations.
     *
     * @return true when {@code e_type} is {@link #ET_REL}
     */
    public boolean isRelocatable() {
        return type == ET_REL;
    }

    /**
     * {@code e_machine}: {@link #EM_X86_64}, {@link #EM_AARCH64}, ...
     *
     * @return the u16 field as stored, not checked against the known machines
     */
    public int machine() {
        return machine;
    }

    /**
     * The file format as llvm-readobj names it, e.g. {@code elf64-x86-64}.
     *
     * @return the name, {@code elf64-unknown} for machines other than x86-64 and AArch64
     */
    public String formatName() {
        return switch (machine) {
            case EM_X86_64 -> "elf64-x86-64";
            case EM_AARCH64 -> in.order() == ByteOrder.LITTLE_ENDIAN ? "elf64-littleaarch64" : "elf64-bigaarch64";
            default -> "elf64-unknown";
        };
    }

    /**
     * The architecture as llvm-readobj names it, e.g. {@code x86_64}, {@code aarch64_be}.
     *
     * @return the name, {@code unknown} for machines other than x86-64 and AArch64
     */
    public String archName() {
        return switch (machine) {
            case EM_X86_64 -> "x86_64";
            case EM_AARCH64 -> in.order() == ByteOrder.LITTLE_ENDIAN ? "aarch64" : "aarch64_be";
            default -> "unknown";
        };
    }

    /**
     * Every section header, in table order; index 0 is the null section.
     *
     * @return an unmodifiable list, empty when the file has no section header table
     */
    public List<ElfSection> sections() {
        return sections;
    }

    /**
     * Where section {@code section}'s {@code sh_addr} field lies in the file: a writer that
     * copies the file and places its sections (the in-memory object a debugger reads) patches it
     * there, 8 bytes in the file's byte order.
     *
     * @param section a section of this file
     * @return the byte offset of its {@code sh_addr} in {@link #image()}, inside the header table
     *     that {@link #parse} bounded
     * @throws IndexOutOfBoundsException if {@code section} is not one of this file's sections
     */
    public long sectionAddressFieldOffset(ElfSection section) {
        if (section.index() < 0 || section.index() >= sections.size() || !sections.get(section.index()).equals(section)) {
            throw new IndexOutOfBoundsException("section " + section.name() + " (index " + section.index()
                    + ") is not a section of this file");
        }
        return in.u64(E_SHOFF) + (long) section.index() * SHDR_SIZE + SH_ADDR;
    }

    /**
     * Section header {@code index}.
     *
     * @param index in {@code [0, sections().size())}
     * @return the section
     * @throws IndexOutOfBoundsException if {@code index} is out of range
     */
    public ElfSection section(int index) {
        return sections.get(index);
    }

    /**
     * The first section named {@code name}.
     *
     * @param name the exact section name, e.g. {@code .llvm_stackmaps}
     * @return the section, or empty when none has that name
     */
    public Optional<ElfSection> findSection(String name) {
        for (ElfSection s : sections) {
            if (s.name().equals(name)) {
                return Optional.of(s);
            }
        }
        return Optional.empty();
    }

    /**
     * The bytes of {@code section} in the file (empty for SHT_NOBITS); checked by {@link #parse}.
     *
     * @param section a section of this file
     * @return a slice of {@link #image()}, not a copy
     * @throws IndexOutOfBoundsException if {@code section} comes from another, larger file
     */
    public MemorySegment contents(ElfSection section) {
        return section.hasFileBytes() ? in.segment().asSlice(section.offset(), section.size()) : in.segment().asSlice(0, 0);
    }

    /**
     * The static symbol table ({@code SHT_SYMTAB}), or the dynamic one when the file has been
     * stripped of it; empty when there is neither. Index 0 is the null symbol.
     *
     * @return a new list, read from the file on each call
     * @throws ElfFormatException as for {@link #symbols(ElfSection)}
     */
    public List<ElfSymbol> symbols() throws ElfFormatException {
        ElfSection table = null;
        for (ElfSection s : sections) {
            if (s.type() == ElfSection.SHT_SYMTAB) {
                table = s;
                break;
            }
            if (s.type() == ElfSection.SHT_DYNSYM && table == null) {
                table = s;
            }
        }
        return table == null ? List.of() : symbols(table);
    }

    /**
     * The entries of symbol table {@code table}, names resolved through its linked string table.
     *
     * @param table an {@code SHT_SYMTAB} or {@code SHT_DYNSYM} section of this file
     * @return a new list, in table order, read from the file on each call
     * @throws ElfFormatException if {@code table} is not a symbol table, is not a whole number of
     *     24-byte entries, does not link to a string table, or a name is outside that table or
     *     not NUL-terminated
     */
    public List<ElfSymbol> symbols(ElfSection table) throws ElfFormatException {
        if (table.type() != ElfSection.SHT_SYMTAB && table.type() != ElfSection.SHT_DYNSYM) {
            throw new ElfFormatException(sectionHeaderOffset(table) + 4, "section[" + table.index() + "].sh_type",
                    "section " + table.name() + " is not a symbol table");
        }
        requireEntries(table, SYM_SIZE);
        ElfSection names = linkedSection(table, ElfSection.SHT_STRTAB);
        int count = (int) (table.size() / SYM_SIZE);
        List<ElfSymbol> symbols = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            long e = table.offset() + (long) i * SYM_SIZE;
            int info = in.u8(e + 4);
            String name = string(in, names.offset(), names.size(), in.u32(e), e, table.name() + "[" + i + "].st_name");
            symbols.add(new ElfSymbol(i, name, info & 0xf, info >>> 4, in.u8(e + 5) & 0x3, in.u16(e + 6), in.u64(e + 8),
                    in.u64(e + 16)));
        }
        return symbols;
    }

    /**
     * The RELA relocations that apply to {@code target}, in file order, from every {@code SHT_RELA}
     * section whose {@code sh_info} names it.
     *
     * @param target the section the relocations apply to
     * @return a new list, empty when nothing applies to {@code target}
     * @throws ElfFormatException for an {@code SHT_REL} section that applies to it (not used by LLVM
     *     on x86-64 or AArch64), or a malformed relocation table
     */
    public List<ElfRelocation> relocationsFor(ElfSection target) throws ElfFormatException {
        List<ElfRelocation> relocations = new ArrayList<>();
        for (ElfSection s : sections) {
            if (s.info() != target.index() || (s.type() != ElfSection.SHT_RELA && s.type() != ElfSection.SHT_REL)) {
                continue;
            }
            if (s.type() == ElfSection.SHT_REL) {
                throw new ElfFormatException(sectionHeaderOffset(s) + 4, "section[" + s.index() + "].sh_type",
                        "REL relocations (" + s.name() + ") are not supported; LLVM writes RELA for ELF64");
            }
            requireEntries(s, RELA_SIZE);
            long count = s.size() / RELA_SIZE;
            for (long i = 0; i < count; i++) {
                long e = s.offset() + i * RELA_SIZE;
                long rInfo = in.u64(e + 8);
                relocations.add(new ElfRelocation(in.u64(e), (int) rInfo, (int) (rInfo >>> 32), in.u64(e + 16)));
            }
        }
        return relocations;
    }

    /**
     * The symbol table that relocation section {@code relocations} refers to.
     *
     * @param relocations an {@code SHT_RELA} (or {@code SHT_REL}) section of this file
     * @return the section its {@code sh_link} names
     * @throws ElfFormatException if {@code sh_link} names no section, or one that is not a symbol
     *     table
     */
    public ElfSection symbolTableOf(ElfSection relocations) throws ElfFormatException {
        ElfSection table = linkedSection(relocations, -1);
        if (table.type() != ElfSection.SHT_SYMTAB && table.type() != ElfSection.SHT_DYNSYM) {
            throw new ElfFormatException(sectionHeaderOffset(relocations) + 40, "section[" + relocations.index() + "].sh_link",
                    "relocation section " + relocations.name() + " links to " + table.name() + ", which is not a symbol table");
        }
        return table;
    }

    /**
     * DT_SONAME from the dynamic section, the name a shared object is loaded by.
     *
     * @return the name, or empty when there is no dynamic section or it has no DT_SONAME
     * @throws ElfFormatException if the dynamic section is not a whole number of 16-byte entries,
     *     does not link to a string table, or the name is outside that table
     */
    public Optional<String> soname() throws ElfFormatException {
        for (ElfSection dynamic : sections) {
            if (dynamic.type() != ElfSection.SHT_DYNAMIC) {
                continue;
            }
            requireEntries(dynamic, DYN_SIZE);
            ElfSection names = linkedSection(dynamic, ElfSection.SHT_STRTAB);
            for (long e = dynamic.offset(); e < dynamic.offset() + dynamic.size(); e += DYN_SIZE) {
                long tag = in.u64(e);
                if (tag == DT_NULL) {
                    break;
                }
                if (tag == DT_SONAME) {
                    return Optional.of(string(in, names.offset(), names.size(), in.u64(e + 8), e + 8, "DT_SONAME"));
                }
            }
        }
        return Optional.empty();
    }

    private void requireEntries(ElfSection table, int entrySize) throws ElfFormatException {
        if (table.size() % entrySize != 0 || (table.entrySize() != 0 && table.entrySize() != entrySize)) {
            throw new ElfFormatException(sectionHeaderOffset(table) + 56, "section[" + table.index() + "].sh_entsize",
                    table.name() + " has " + table.size() + " bytes with entry size " + table.entrySize()
                            + "; expected whole entries of " + entrySize + " bytes");
        }
    }

    private ElfSection linkedSection(ElfSection from, int expectedType) throws ElfFormatException {
        int link = from.link();
        if (link <= 0 || link >= sections.size()) {
            throw new ElfFormatException(sectionHeaderOffset(from) + 40, "section[" + from.index() + "].sh_link",
                    from.name() + " links to section " + Integer.toUnsignedString(link) + ", which does not exist");
        }
        ElfSection linked = sections.get(link);
        if (expectedType >= 0 && linked.type() != expectedType) {
            throw new ElfFormatException(sectionHeaderOffset(from) + 40, "section[" + from.index() + "].sh_link",
                    from.name() + " links to " + linked.name() + " of type " + linked.type() + ", expected " + expectedType);
        }
        return linked;
    }

    private long sectionHeaderOffset(ElfSection s) {
        return in.u64(E_SHOFF) + (long) s.index() * SHDR_SIZE;
    }
}
