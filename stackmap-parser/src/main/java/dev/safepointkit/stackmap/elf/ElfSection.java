package dev.safepointkit.stackmap.elf;

/**
 * A section header of an ELF64 file, with its name resolved. Field names follow the ELF
 * specification ({@code sh_*}).
 *
 * @param index position in the section header table
 * @param name the name from the section name table ({@code e_shstrndx}); empty for section 0
 * @param type {@code sh_type}: {@link #SHT_PROGBITS}, {@link #SHT_SYMTAB}, {@link #SHT_RELA}, ...
 * @param flags {@code sh_flags}: {@link #SHF_WRITE}, {@link #SHF_ALLOC}, {@link #SHF_EXECINSTR},
 *     and others
 * @param address {@code sh_addr}: where the section is loaded in a linked file, 0 in a relocatable one
 * @param offset {@code sh_offset}: where its bytes are in the file
 * @param size {@code sh_size}
 * @param link {@code sh_link}: for symbol tables their string table, for relocations their symbol table
 * @param info {@code sh_info}: for relocation sections the section they apply to
 * @param alignment {@code sh_addralign}: the required alignment in bytes; 0 or 1 for none
 * @param entrySize {@code sh_entsize}: the size of one entry for tables of fixed-size entries
 *     (24 for symbols and RELA relocations), 0 otherwise
 */
public record ElfSection(int index, String name, int type, long flags, long address, long offset, long size, int link,
        int info, long alignment, long entrySize) {
    public static final int SHT_NULL = 0;
    public static final int SHT_PROGBITS = 1;
    public static final int SHT_SYMTAB = 2;
    public static final int SHT_STRTAB = 3;
    public static final int SHT_RELA = 4;
    public static final int SHT_DYNAMIC = 6;
    public static final int SHT_NOBITS = 8;
    public static final int SHT_REL = 9;
    public static final int SHT_DYNSYM = 11;

    public static final long SHF_WRITE = 0x1;
    public static final long SHF_ALLOC = 0x2;
    public static final long SHF_EXECINSTR = 0x4;

    /**
     * Whether the section takes space in the file ({@code SHT_NOBITS} sections do not).
     *
     * @return false for {@code SHT_NOBITS} and {@code SHT_NULL}, true for every other type
     */
    public boolean hasFileBytes() {
        return type != SHT_NOBITS && type != SHT_NULL;
    }
}
