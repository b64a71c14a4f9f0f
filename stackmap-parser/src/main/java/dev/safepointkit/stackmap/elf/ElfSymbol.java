package dev.safepointkit.stackmap.elf;

/**
 * A symbol table entry of an ELF64 file, with its name resolved.
 *
 * @param index position in its symbol table (relocations refer to symbols by this index)
 * @param sectionIndex {@code st_shndx}: the defining section, or {@link #SHN_UNDEF}, {@link #SHN_ABS}, {@link #SHN_COMMON}
 * @param value {@code st_value}: section-relative in a relocatable object, an address in a linked file
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

    public boolean isUndefined() {
        return sectionIndex == SHN_UNDEF;
    }

    public boolean isFunction() {
        return type == STT_FUNC;
    }
}
