package dev.safepointkit.stackmap;

/**
 * A view of one Location of a call-site record: where a live value is at the call site.
 * Immutable; reads fields from the stack map's memory.
 */
public final class Location {
    static final int SIZE = 12;
    static final int KIND = 0;
    static final int SIZE_IN_BYTES = 2;
    static final int DWARF_REG = 4;
    static final int OFFSET_OR_CONSTANT = 8;

    private final StackMap map;
    private final long offset;

    Location(StackMap map, long offset) {
        this.map = map;
        this.offset = offset;
    }

    /**
     * How this location describes the value; decides which of the other getters mean anything.
     *
     * @return the kind, from the Type byte (validated when the stack map was parsed)
     */
    public LocationKind kind() {
        return LocationKind.ofValidCode(map.reader().u8(offset + KIND));
    }

    /**
     * Size of the value in bytes (for Indirect, of the stored value: 16 for a vector).
     *
     * @return the u16 Size field
     */
    public int sizeInBytes() {
        return map.reader().u16(offset + SIZE_IN_BYTES);
    }

    /**
     * The DWARF register: holding the value (Register) or the base of the address (Direct,
     * Indirect). Not meaningful for the constant kinds.
     *
     * @return the u16 DWARF register number
     */
    public int dwarfRegNum() {
        return map.reader().u16(offset + DWARF_REG);
    }

    /**
     * The signed offset from the register, for Direct and Indirect.
     *
     * @return the offset in bytes, the 32-bit field read signed
     */
    public int offset() {
        return map.reader().i32(offset + OFFSET_OR_CONSTANT);
    }

    /**
     * The value of a Constant location: the 32-bit field, sign-extended as LLVM writes it.
     *
     * @return the constant, in {@code [-2^31, 2^31)}
     */
    public long smallConstant() {
        return map.reader().i32(offset + OFFSET_OR_CONSTANT);
    }

    /**
     * The 32-bit field as stored, unsigned (how llvm-readobj prints a Constant).
     *
     * @return the field, in {@code [0, 2^32)}
     */
    public long rawConstantField() {
        return map.reader().u32(offset + OFFSET_OR_CONSTANT);
    }

    /**
     * Index into the constants table, for ConstantIndex (validated to be in range).
     *
     * @return the index, below {@link StackMap#constantCount()} of the enclosing stack map, for a
     *     ConstantIndex location
     */
    public int constantIndex() {
        return (int) map.reader().u32(offset + OFFSET_OR_CONSTANT);
    }

    /**
     * The value of a Constant or ConstantIndex location.
     *
     * @return the constant, sign-extended for Constant, the 64-bit table entry for ConstantIndex
     * @throws IllegalStateException for the other kinds, whose value lives in the machine state
     */
    public long constantValue() {
        return switch (kind()) {
            case CONSTANT -> smallConstant();
            case CONSTANT_INDEX -> map.constant(constantIndex());
            default -> throw new IllegalStateException(kind() + " location has no constant value");
        };
    }

    /**
     * Offset of this location from the start of the section, for error messages and hex dumps.
     *
     * @return the byte offset of the Location's Type field in its section
     */
    public long sectionOffset() {
        return map.sectionOffset() + offset;
    }

    @Override
    public String toString() {
        return switch (kind()) {
            case REGISTER -> "Register R#" + dwarfRegNum() + ", size " + sizeInBytes();
            case DIRECT -> "Direct R#" + dwarfRegNum() + " + " + offset() + ", size " + sizeInBytes();
            case INDIRECT -> "Indirect [R#" + dwarfRegNum() + " + " + offset() + "], size " + sizeInBytes();
            case CONSTANT -> "Constant " + smallConstant() + ", size " + sizeInBytes();
            case CONSTANT_INDEX -> "ConstantIndex #" + constantIndex() + ", size " + sizeInBytes();
        };
    }
}
