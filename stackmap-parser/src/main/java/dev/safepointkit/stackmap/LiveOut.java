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

    public int dwarfRegNum() {
        return map.reader().u16(offset + DWARF_REG);
    }

    public int sizeInBytes() {
        return map.reader().u8(offset + SIZE_IN_BYTES);
    }

    @Override
    public String toString() {
        return "LiveOut R#" + dwarfRegNum() + " (" + sizeInBytes() + " bytes)";
    }
}
