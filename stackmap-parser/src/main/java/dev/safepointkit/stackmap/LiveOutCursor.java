package dev.safepointkit.stackmap;

/**
 * A reusable view of one LiveOut: {@link RecordCursor#liveOut(int, LiveOutCursor)} moves it to a
 * live-out entry and reads its four bytes at once; the getters allocate nothing.
 *
 * <p>Mutable: one thread at a time may move and read a cursor. {@link LiveOut} is the immutable,
 * allocating view of the same fields.
 */
public final class LiveOutCursor {
    private int dwarfRegNum;
    private int sizeInBytes;

    /** A cursor that points nowhere until a record moves it to a live-out. */
    public LiveOutCursor() {
    }

    LiveOutCursor moveTo(StackMap map, long offset) {
        // The entry as one little-endian 32-bit load: u16 DwarfRegNum, u8 0, u8 Size.
        int word = map.bytes.get(StackMap.HALF_WORD, offset + LiveOut.DWARF_REG);
        int reg = word & 0xFFFF;
        this.dwarfRegNum = map.bigEndian ? Short.toUnsignedInt(Short.reverseBytes((short) reg)) : reg;
        this.sizeInBytes = word >>> 24;
        return this;
    }

    /**
     * The live register.
     *
     * @return its DWARF register number (for x86-64, 0 is RAX, 7 is RSP; for AArch64, 0 to 30 are
     *     X0 to X30)
     */
    public int dwarfRegNum() {
        return dwarfRegNum;
    }

    /**
     * How much of the register is live.
     *
     * @return the size in bytes of the live value, from the u8 field (8 for a 64-bit
     *     general-purpose register)
     */
    public int sizeInBytes() {
        return sizeInBytes;
    }

    @Override
    public String toString() {
        return "LiveOut R#" + dwarfRegNum + " (" + sizeInBytes + " bytes)";
    }
}
