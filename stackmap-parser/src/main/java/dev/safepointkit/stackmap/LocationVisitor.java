package dev.safepointkit.stackmap;

/**
 * Receives a record's locations one by one from {@link RecordCursor#forEachLocation}, fields
 * taken apart: the fastest way through every location of a record, with no cursor or array in
 * between (a little-endian section's entries are read two at a time, as three whole words; a
 * big-endian section's one at a time, their fields swapped).
 *
 * <p>Called on the thread that called {@code forEachLocation}, in location order, once per
 * location. Keep one visitor per thread and reuse it, as the cursors are: a lambda that captures
 * a value of the record it is made for is a new object per record.
 */
@FunctionalInterface
public interface LocationVisitor {
    /**
     * One location of the record.
     *
     * @param kindCode the Type byte, 1 to 5 (see {@link LocationKind#code()}; validated when the
     *     stack map was parsed)
     * @param sizeInBytes the u16 Size field
     * @param dwarfRegNum the u16 DWARF register number
     * @param offsetOrConstant the 32-bit field, read signed: the offset for Direct and Indirect, the
     *     value for Constant ({@link Integer#toUnsignedLong} gives it as LLVM prints it), the index
     *     into the constants table for ConstantIndex (validated to be in range; the value is
     *     {@link StackMap#constant(int)})
     */
    void location(int kindCode, int sizeInBytes, int dwarfRegNum, int offsetOrConstant);
}
