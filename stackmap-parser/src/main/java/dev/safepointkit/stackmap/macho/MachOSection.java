package dev.safepointkit.stackmap.macho;

/**
 * A section of a 64-bit Mach-O file, from its {@code section_64} entry (every offset and size
 * already checked against the file).
 *
 * @param ordinal the section's number as symbols and relocations use it, counting from 1 across
 *     all segments
 * @param segment the segment name, e.g. {@code __LLVM_STACKMAPS}
 * @param name the section name, e.g. {@code __llvm_stackmaps}
 * @param address the section's address in the file's address space
 * @param size its size in bytes
 * @param fileOffset where its bytes start in the file (0 for a zero-fill section)
 * @param relocationOffset where its relocation entries start in the file
 * @param relocationCount how many 8-byte relocation entries it has
 * @param flags the section type (low 8 bits) and attributes
 */
public record MachOSection(int ordinal, String segment, String name, long address, long size, long fileOffset,
        long relocationOffset, int relocationCount, int flags) {
    /** Section type of zero-fill sections, which have no bytes in the file. */
    public static final int S_ZEROFILL = 1;

    /**
     * Whether the section's bytes are in the file.
     *
     * @return false for the zero-fill types
     */
    public boolean hasFileBytes() {
        int type = flags & 0xFF;
        return type != S_ZEROFILL && type != 0x0C && type != 0x12;
    }
}
