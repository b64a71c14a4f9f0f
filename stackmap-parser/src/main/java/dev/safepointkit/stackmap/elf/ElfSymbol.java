package dev.safepointkit.stackmap.elf;

/**
 * A symbol table entry of an ELF64 file, with its name resolved.
 *
 * @param index position in its symbol table (relocations refer to symbols by this index)
 * @param name the name from the linked string table; empty for unnamed symbols (index 0,
 *     most section symbols)
 * @param type the low four bits of {@code st_info}: {@link #STT_FUNC}, {@link #STT_SECTION}, ...
 * @param binding the high four bits of {@code st_info}: {@link #STB_LOCAL}, {@link #STB_GLOBAL},
 *     {@link #STB_WEAK}
 * @param visibility the low two bits of {@code st_other}: 0 default, 1 internal, 2 hidden,
 *     3 protected
 * @param sectionIndex {@code st_shndx}: the defining section, or {@link #SHN_UNDEF}, {@link #SHN_ABS}, {@link #SHN_COMMON}
 * @param value {@code st_value}: section-relative in a relocatable object, an address in a linked file
 * @param size {@code st_size}: the size in bytes of the function or object, 0 when unknown
 */
public record ElfSymbol(int index, String name, int type, int binding, int visibility, int sectionIndex, long value,
        long size) {
    public static final int STT_NOTYPE = 0;
    public static final int STT_OBJECT = 1;
    public static final int STT_FUNC = 2;
    public static final int STT_SECTION = 3;
    public static final int STT_FILE = 4;

    public static final int STB_LOCAL = 0;
    public static final int STB_GLOBAL = 1;
    public static final int STB_WEAK = 2;

    public static final int SHN_UNDEF = 0;
    public static final int SHN_ABS = 0xfff1;
    public static final int SHN_COMMON = 0xfff2;

    /**
     * Whether the symbol is defined in another file (a reference to be resolved at link or load
     * time).
     *
     * @return true when {@code sectionIndex} is {@link #SHN_UNDEF}
     */
    public boolean isUndefined() {
        return sectionIndex == SHN_UNDEF;
    }

    /**
     * Whether the symbol names code.
     *
     * @return true when {@code type} is {@link #STT_FUNC}
     */
    public boolean isFunction() {
        return type == STT_FUNC;
    }
}
