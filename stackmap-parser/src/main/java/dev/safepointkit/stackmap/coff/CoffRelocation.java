package dev.safepointkit.stackmap.coff;

/**
 * A relocation of a COFF section. The addend is implicit: it is stored in the relocated field.
 *
 * @param address VirtualAddress: the field's offset from the start of its section
 * @param symbolIndex SymbolTableIndex (checked to name an entry of the table)
 * @param type e.g. {@link #IMAGE_REL_AMD64_ADDR64}
 */
public record CoffRelocation(long address, long symbolIndex, int type) {
    /** The 64-bit absolute type on x86-64. */
    public static final int IMAGE_REL_AMD64_ADDR64 = 1;
    /** The 64-bit absolute type on ARM64. */
    public static final int IMAGE_REL_ARM64_ADDR64 = 0xE;
}
