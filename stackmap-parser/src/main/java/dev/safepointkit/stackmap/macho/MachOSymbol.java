package dev.safepointkit.stackmap.macho;

/**
 * An {@code nlist_64} entry of a Mach-O symbol table.
 *
 * @param index position in the symbol table
 * @param name the name as stored (C symbols carry a leading underscore)
 * @param type the n_type byte
 * @param section the n_sect byte: the defining section's ordinal, 0 when none
 * @param value the n_value field: an address for a symbol defined in a section
 */
public record MachOSymbol(int index, String name, int type, int section, long value) {
    /** n_type bits that say a symbol is a debugging entry (stab). */
    public static final int N_STAB = 0xE0;
    /** n_type bits of the symbol's kind. */
    public static final int N_TYPE = 0x0E;
    /** Kind: defined in section {@code section}. */
    public static final int N_SECT = 0x0E;

    /**
     * Whether this symbol is defined in a section (and is not a debugging entry).
     *
     * @return true for an N_SECT symbol
     */
    public boolean isDefinedInSection() {
        return (type & N_STAB) == 0 && (type & N_TYPE) == N_SECT;
    }
}
