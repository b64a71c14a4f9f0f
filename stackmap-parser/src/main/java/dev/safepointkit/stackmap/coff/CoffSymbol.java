package dev.safepointkit.stackmap.coff;

/**
 * A symbol table entry of a COFF object (auxiliary entries are skipped, not listed).
 *
 * @param index the entry's index in the symbol table, counting auxiliary entries, as relocations
 *     refer to it
 * @param name the name, long names resolved through the string table
 * @param value the Value field: for a symbol defined in a section, its offset there
 * @param section the 1-based SectionNumber; 0 undefined, negative for absolute and debug symbols
 * @param type the Type field; {@link #DTYPE_FUNCTION} in the high byte for a function
 * @param storageClass the StorageClass byte
 */
public record CoffSymbol(int index, String name, long value, int section, int type, int storageClass) {
    /** The complex type of a function, in bits 4 to 7 of Type. */
    public static final int DTYPE_FUNCTION = 2;
    /** IMAGE_SYM_CLASS_STATIC: a section symbol or a file-local one. */
    public static final int IMAGE_SYM_CLASS_STATIC = 3;

    /**
     * Whether this symbol is a function defined in a section of the object.
     *
     * @return true when Type says function and SectionNumber names a section
     */
    public boolean isFunction() {
        return (type >>> 4 & 0xF) == DTYPE_FUNCTION && section > 0;
    }
}
