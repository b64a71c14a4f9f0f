package dev.safepointkit.stackmap;

/**
 * A reusable view of one Location: {@link RecordCursor#location(int, LocationCursor)} moves it to a
 * location and reads the 12-byte entry there with two loads; the getters below take those
 * apart and allocate nothing.
 *
 * <p>Mutable: one thread at a time may move and read a cursor (keep one per thread and reuse
 * it). The stack map it reads is shared and immutable; {@link Location} is the immutable,
 * allocating view of the same fields.
 */
public final class LocationCursor {
    private StackMap map;
    private long offset;
    /** The entry's first eight bytes as a little-endian word (a big-endian entry's fields swapped into it). */
    private long word;
    /** The signed 32-bit OffsetOrSmallConstant field. */
    private int offsetOrConstant;

    /** A cursor that points nowhere until a record moves it to a location. */
    public LocationCursor() {
    }

    /** Reads the location at {@code offset} (relative to the stack map), which parsing validated. */
    LocationCursor moveTo(StackMap map, long offset) {
        // Two little-endian loads: u8 Type, u8 0, u16 Size, u16 DwarfRegNum, u16 0; then the i32.
        // The cursor keeps them as they are (few values for the JIT to keep live in the caller's
        // loop); the getters take the fields apart.
        long w = map.bytes.get(StackMap.WORD, offset + Location.KIND);
        int field = map.bytes.get(StackMap.HALF_WORD, offset + Location.OFFSET_OR_CONSTANT);
        if (map.bigEndian) {
            w = Location.swapHalves(w);
            field = Integer.reverseBytes(field);
        }
        this.map = map;
        this.offset = offset;
        this.word = w;
        this.offsetOrConstant = field;
        return this;
    }

    /**
     * How this location describes the value; decides which of the other getters mean anything.
     *
     * @return the kind, from the Type byte (validated when the stack map was parsed)
     */
    public LocationKind kind() {
        return LocationKind.ofValidCode(kindCode());
    }

    /**
     * The Type byte itself, for switches that want no enum.
     *
     * @return the kind's code, 1 to 5 (see {@link LocationKind#code()})
     */
    public int kindCode() {
        return (int) word & 0xFF;
    }

    /**
     * Size of the value in bytes (for Indirect, of the stored value: 16 for a vector).
     *
     * @return the u16 Size field
     */
    public int sizeInBytes() {
        return (int) (word >>> 16) & 0xFFFF;
    }

    /**
     * The DWARF register: holding the value (Register) or the base of the address (Direct,
     * Indirect). Not meaningful for the constant kinds.
     *
     * @return the u16 DWARF register number
     */
    public int dwarfRegNum() {
        return (int) (word >>> 32) & 0xFFFF;
    }

    /**
     * The signed offset from the register, for Direct and Indirect.
     *
     * @return the offset in bytes, the 32-bit field read signed
     */
    public int offset() {
        return offsetOrConstant;
    }

    /**
     * The value of a Constant location: the 32-bit field, sign-extended as LLVM writes it.
     *
     * @return the constant, in {@code [-2^31, 2^31)}
     */
    public long smallConstant() {
        return offsetOrConstant;
    }

    /**
     * The 32-bit field as stored, unsigned (how llvm-readobj prints a Constant).
     *
     * @return the field, in {@code [0, 2^32)}
     */
    public long rawConstantField() {
        return Integer.toUnsignedLong(offsetOrConstant);
    }

    /**
     * Index into the constants table, for ConstantIndex (validated to be in range).
     *
     * @return the index, below {@link StackMap#constantCount()}, for a ConstantIndex location
     */
    public int constantIndex() {
        return offsetOrConstant;
    }

    /**
     * The value of a Constant or ConstantIndex location.
     *
     * @return the constant, sign-extended for Constant, the 64-bit table entry for ConstantIndex
     * @throws IllegalStateException for the other kinds, whose value lives in the machine state
     */
    public long constantValue() {
        int kind = kindCode();
        if (kind == LocationKind.CONSTANT_CODE) {
            return offsetOrConstant;
        }
        if (kind == LocationKind.CONSTANT_INDEX_CODE) {
            return map.constant(offsetOrConstant);
        }
        throw new IllegalStateException(kind() + " location has no constant value");
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
            case DIRECT -> "Direct R#" + dwarfRegNum() + " + " + offsetOrConstant + ", size " + sizeInBytes();
            case INDIRECT -> "Indirect [R#" + dwarfRegNum() + " + " + offsetOrConstant + "], size " + sizeInBytes();
            case CONSTANT -> "Constant " + offsetOrConstant + ", size " + sizeInBytes();
            case CONSTANT_INDEX -> "ConstantIndex #" + offsetOrConstant + ", size " + sizeInBytes();
        };
    }
}
