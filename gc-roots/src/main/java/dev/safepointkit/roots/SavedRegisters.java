package dev.safepointkit.roots;

import java.util.Arrays;

/**
 * Register values of the innermost JIT frame at its safepoint, by DWARF register number, and
 * where each is saved so a moving collector can update it. Not thread safe: one per stopped thread.
 */
public final class SavedRegisters {
    private static final int DWARF_REGISTERS = 17;
    private final long[] slots = new long[DWARF_REGISTERS];

    /** No register saved: {@link #slotOf} is -1 for every register until {@link #savedAt} says otherwise. */
    public SavedRegisters() {
        Arrays.fill(slots, -1);
    }

    /**
     * Register {@code dwarf} was saved at stack address {@code slot} (its value is read from there,
     * and a moving collector rewrites it there).
     *
     * @param dwarf the x86-64 DWARF register number, 0 (RAX) to 16 (the return address column)
     * @param slot the absolute stack address of the 8-byte save slot
     * @return this, for chaining
     * @throws ArrayIndexOutOfBoundsException if {@code dwarf} is outside {@code [0, 16]}
     */
    public SavedRegisters savedAt(int dwarf, long slot) {
        slots[dwarf] = slot;
        return this;
    }

    /**
     * Where register {@code dwarf} was saved, or -1 when the poll did not save it.
     *
     * @param dwarf a DWARF register number; any value, those out of range were never saved
     * @return the absolute stack address of its save slot, or -1
     */
    public long slotOf(int dwarf) {
        return dwarf >= 0 && dwarf < DWARF_REGISTERS ? slots[dwarf] : -1;
    }

    /**
     * What a poll or exit that saved no register leaves: a walk then fails on a register root or
     * a dynamic frame in the run's innermost frame.
     *
     * @return a new, empty instance
     */
    public static SavedRegisters none() {
        return new SavedRegisters();
    }

    /**
     * What a poll function with a frame pointer saved: its prologue ({@code push %rbp}) stored the
     * polling JIT frame's RBP just below the return-address slot.
     *
     * @param returnAddressSlot the absolute address of the slot holding the return address into
     *     the polling JIT frame
     * @return a new instance with RBP saved at {@code returnAddressSlot - 8}
     */
    public static SavedRegisters framePointerBelow(long returnAddressSlot) {
        return new SavedRegisters().savedAt(JitStackWalker.RBP, returnAddressSlot - 8);
    }
}
