package dev.safepointkit.stackmap;

/**
 * A view of one LiveOut: a register that is live across a patchpoint and that code patched
 * into the sled must preserve. Immutable.
 */
public final class LiveOut {
    static final int SIZE = 4;
    static final int DWARF_REG = 0;
    static final int SIZE_IN_BYTES = 3;

    private final StackMap map;
    private final long offset;

    LiveOut(StackMap map, long offset) {
        this.map = map;
        this.offset = offset;
    }

    /**
     * The live register.
     *
     * @return its DWARF register number (for x86-64, 0 is RAX, 7 is RSP; for AArch64, 0 to 30 are
     *     X0 to X30)
     */
    public int dwarfRegNum() {
        return map.reader().u16(offset + DWARF_REG);
    }

    /**
     * How much of the register is live.
     *
     * @return the size in bytes of the live value, from the u8 field (8 for a 64-bit
     *     general-purpose register)
     */
    public int sizeInBytes() {
        return map.reader().u8(offset + SIZE_IN_BYTES);
    }

    @Override
    public String toString() {
        return "LiveOut R#" + dwarfRegNum() + " (" + sizeInBytes() + " bytes)";
    }
}
