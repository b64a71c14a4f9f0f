package dev.safepointkit.stackmap;

/** How a stack map location describes a value; the codes are those LLVM writes. */
public enum LocationKind {
    /** The value is in register {@code dwarfRegNum}. */
    REGISTER(LocationKind.REGISTER_CODE),
    /** The value is the address {@code reg + offset}: typically an alloca. */
    DIRECT(LocationKind.DIRECT_CODE),
    /** The value is stored in memory at {@code [reg + offset]}: a spill slot. */
    INDIRECT(LocationKind.INDIRECT_CODE),
    /** The value is the sign-extended 32-bit offset field itself. */
    CONSTANT(LocationKind.CONSTANT_CODE),
    /** The value is entry {@code offset} of the stack map's constants table. */
    CONSTANT_INDEX(LocationKind.CONSTANT_INDEX_CODE);

    // The codes as compile-time constants, for a switch over LocationCursor.kindCode(): on hot
    // paths it costs less than a switch over the enum, which goes through an ordinal table.

    /** Register's Type byte. */
    public static final int REGISTER_CODE = 1;
    /** Direct's Type byte. */
    public static final int DIRECT_CODE = 2;
    /** Indirect's Type byte. */
    public static final int INDIRECT_CODE = 3;
    /** Constant's Type byte. */
    public static final int CONSTANT_CODE = 4;
    /** ConstantIndex's Type byte, the highest. */
    public static final int CONSTANT_INDEX_CODE = 5;

    private static final LocationKind[] BY_CODE = {null, REGISTER, DIRECT, INDIRECT, CONSTANT, CONSTANT_INDEX};

    private final int code;

    LocationKind(int code) {
        this.code = code;
    }

    /**
     * The byte LLVM writes for this kind.
     *
     * @return the Location's Type field, 1 to 5
     */
    public int code() {
        return code;
    }

    static boolean isValid(int code) {
        return code >= 1 && code < BY_CODE.length;
    }

    /** The kind for a code that {@link #isValid(int)} accepted. */
    static LocationKind ofValidCode(int code) {
        return BY_CODE[code];
    }
}
