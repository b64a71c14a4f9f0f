package dev.safepointkit.roots;

import java.util.Arrays;

/**
 * Register values of the innermost JIT frame at its safepoint, by DWARF register number, and
 * where each is saved so a moving collector can update it. Not thread safe: one per stopped thread.
 */
public final class SavedRegisters {
    private static final int DWARF_REGISTERS = 17;
    private final long[] slots = new long[DWARF_REGISTERS];

    public SavedRegisters() {
        Arrays.fill(slots, -1);
    }

    /** Register {@code dwarf} was saved at stack address {@code slot} (its value is read from there). */
    public SavedRegisters savedAt(int dwarf, long slot) {
        slots[dwarf] = slot;
        return this;
    }

    /** Where register {@code dwarf} was saved, or -1 when the poll did not save it. */
    public long slotOf(int dwarf) {
        return dwarf >= 0 && dwarf < DWARF_REGISTERS ? slots[dwarf] : -1;
    }

    public static SavedRegisters none() {
        return new SavedRegisters();
    }

    /**
     * What a poll function with a frame pointer saved: its prologue ({@code push %rbp}) stored the
     * polling JIT frame's RBP just below the return-address slot.
     */
    public static SavedRegisters framePointerBelow(long returnAddressSlot) {
        return new SavedRegisters().savedAt(JitStackWalker.RBP, returnAddressSlot - 8);
    }
}
