package dev.safepointkit.stackmap;

/**
 * A view of one Location of a call-site record: where a live value is at the call site.
 * Immutable, and allocated per call of {@link CallSiteRecord#location(int)}; code that reads many
 * locations uses a {@link LocationCursor} instead, which this view wraps.
 *
 * <p>Layout of the 12-byte entry (a cursor loads the first eight bytes as one little-endian word,
 * then the i32):
 * <pre>
 * u8 Type, u8 0, u16 Size, u16 DwarfRegNum, u16 0, i32 OffsetOrSmallConstant
 * </pre>
 */
public final class Location {
    static final int SIZE = 12;
    static final int KIND = 0;
    static final int SIZE_IN_BYTES = 2;
    static final int DWARF_REG = 4;
    static final int OFFSET_OR_CONSTANT = 8;

    private final LocationCursor at;

    Location(LocationCursor at) {
        this.at = at;
    }

    /**
     * A big-endian entry's first eight bytes, loaded as a little-endian word, with Size and
     * DwarfRegNum byte-swapped in place: the word a little-endian entry with the same fields
     * loads as. Type is one byte (the word's lowest in either order) and the rest is reserved.
     */
    static long swapHalves(long word) {
        long size = Short.toUnsignedLong(Short.reverseBytes((short) (word >>> 16)));
        long reg = Short.toUnsignedLong(Short.reverseBytes((short) (word >>> 32)));
        return (word & 0xFFFF_0000_0000_FFFFL) | size << 16 | reg << 32;
    }

    /**
     * How this location describes the value; decides which of the other getters mean anything.
     *
     * @return the kind, from the Type byte (validated when the stack map was parsed)
     */
    public LocationKind kind() {
        return at.kind();
    }

    /**
     * Size of the value in bytes (for Indirect, of the stored value: 16 for a vector).
     *
     * @return the u16 Size field
     */
    public int sizeInBytes() {
        return at.sizeInBytes();
    }

    /**
     * The DWARF register: holding the value (Register) or the base of the address (Direct,
     * Indirect). Not meaningful for the constant kinds.
     *
     * @return the u16 DWARF register number
     */
    public int dwarfRegNum() {
        return at.dwarfRegNum();
    }

    /**
     * The signed offset from the register, for Direct and Indirect.
     *
     * @return the offset in bytes, the 32-bit field read signed
     */
    public int offset() {
        return at.offset();
    }

    /**
     * The value of a Constant location: the 32-bit field, sign-extended as LLVM writes it.
     *
     * @return the constant, in {@code [-2^31, 2^31)}
     */
    public long smallConstant() {
        return at.smallConstant();
    }

    /**
     * The 32-bit field as stored, unsigned (how llvm-readobj prints a Constant).
     *
     * @return the field, in {@code [0, 2^32)}
     */
    public long rawConstantField() {
        return at.rawConstantField();
    }

    /**
     * Index into the constants table, for ConstantIndex (validated to be in range).
     *
     * @return the index, below {@link StackMap#constantCount()} of the enclosing stack map, for a
     *     ConstantIndex location
     */
    public int constantIndex() {
        return at.constantIndex();
    }

    /**
     * The value of a Constant or ConstantIndex location.
     *
     * @return the constant, sign-extended for Constant, the 64-bit table entry for ConstantIndex
     * @throws IllegalStateException for the other kinds, whose value lives in the machine state
     */
    public long constantValue() {
        return at.constantValue();
    }

    /**
     * Offset of this location from the start of the section, for error messages and hex dumps.
     *
     * @return the byte offset of the Location's Type field in its section
     */
    public long sectionOffset() {
        return at.sectionOffset();
    }

    @Override
    public String toString() {
        return at.toString();
    }
}
