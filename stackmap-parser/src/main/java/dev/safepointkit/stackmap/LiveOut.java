package dev.safepointkit.stackmap;

/**
 * A view of one LiveOut: a register that is live across a patchpoint and that code patched
 * into the sled must preserve. Immutable, allocated per call of {@link CallSiteRecord#liveOut(int)};
 * {@link LiveOutCursor} reads the same fields without allocating.
 *
 * <p>Layout: u16 DwarfRegNum, u8 0, u8 Size.
 */
public final class LiveOut {
    static final int SIZE = 4;
    static final int DWARF_REG = 0;
    static final int SIZE_IN_BYTES = 3;

    private final LiveOutCursor at;

    LiveOut(LiveOutCursor at) {
        this.at = at;
    }

    /**
     * The live register.
     *
     * @return its DWARF register number (for x86-64, 0 is RAX, 7 is RSP; for AArch64, 0 to 30 are
     *     X0 to X30)
     */
    public int dwarfRegNum() {
        return at.dwarfRegNum();
    }

    /**
     * How much of the register is live.
     *
     * @return the size in bytes of the live value, from the u8 field (8 for a 64-bit
     *     general-purpose register)
     */
    public int sizeInBytes() {
        return at.sizeInBytes();
    }

    @Override
    public String toString() {
        return at.toString();
    }
}
