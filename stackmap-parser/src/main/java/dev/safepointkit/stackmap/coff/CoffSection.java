package dev.safepointkit.stackmap.coff;

/**
 * A section of a COFF object, from its section table entry (offsets and sizes already checked
 * against the file).
 *
 * @param number the section's 1-based number, as symbols use it
 * @param name the name, long names resolved through the string table
 * @param rawDataSize SizeOfRawData: the bytes in the file
 * @param rawDataOffset PointerToRawData
 * @param relocationOffset PointerToRelocations
 * @param relocationCount NumberOfRelocations
 * @param characteristics the section flags
 */
public record CoffSection(int number, String name, long rawDataSize, long rawDataOffset, long relocationOffset,
        int relocationCount, int characteristics) {
    /** IMAGE_SCN_CNT_UNINITIALIZED_DATA: no bytes in the file. */
    public static final int IMAGE_SCN_CNT_UNINITIALIZED_DATA = 0x80;

    /**
     * Whether the section's bytes are in the file.
     *
     * @return false for uninitialized data
     */
    public boolean hasFileBytes() {
        return (characteristics & IMAGE_SCN_CNT_UNINITIALIZED_DATA) == 0;
    }
}
