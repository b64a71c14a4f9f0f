package dev.safepointkit.stackmap.macho;

/**
 * A {@code relocation_info} entry of a Mach-O section.
 *
 * @param address the offset of the relocated field from the start of its section
 * @param symbolOrSection a symbol index when {@code external}, else a section ordinal
 * @param pcRelative whether the field is PC-relative
 * @param lengthLog2 the field's size as a power of two (3 for 8 bytes)
 * @param external whether {@code symbolOrSection} names a symbol
 * @param type the relocation type (0 is X86_64_RELOC_UNSIGNED and ARM64_RELOC_UNSIGNED)
 */
public record MachORelocation(long address, int symbolOrSection, boolean pcRelative, int lengthLog2, boolean external,
        int type) {
    /** The absolute-address type on both x86-64 and arm64. */
    public static final int RELOC_UNSIGNED = 0;
}
