package dev.safepointkit.roots;

import dev.safepointkit.registry.UnwindPlan;
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

    /** The lowest stack address of a save slot, or {@code Long.MAX_VALUE} when nothing is saved. */
    long lowestSlot() {
        long low = Long.MAX_VALUE;
        for (long slot : slots) {
            if (slot >= 0) {
                low = Math.min(low, slot);
            }
        }
        return low;
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

    /**
     * What a poll function saved in its own frame, by the unwind plan at its call out (registered
     * like any safepoint): each callee-saved register the plan says it saved, at CFA - 8k, where
     * its CFA is just above the return address into the polling JIT frame. A poll that clobbers
     * every callee-saved register (so its prologue saves them all) hands the walker the polling
     * frame's values this way, and its epilogue restores what a collector wrote there.
     *
     * @param pollPlan the poll's {@link UnwindPlan} at its call out; must be present
     * @param returnAddressSlot the absolute address of the slot holding the return address into
     *     the polling JIT frame
     * @return a new instance with the registers the plan saved
     * @throws IllegalArgumentException if {@code pollPlan} is not a plan
     */
    public static SavedRegisters savedByPoll(long pollPlan, long returnAddressSlot) {
        if (!UnwindPlan.present(pollPlan)) {
            throw new IllegalArgumentException("the poll has no unwind plan: its object was registered without .eh_frame");
        }
        SavedRegisters saved = new SavedRegisters();
        long cfa = returnAddressSlot + 8;
        for (int c = 0; c < UnwindPlan.SLOTS; c++) {
            int k = UnwindPlan.saved(pollPlan, c);
            if (k != 0 && k != UnwindPlan.UNDEFINED) {
                saved.savedAt(UnwindPlan.registerOf(c), cfa - 8L * k);
            }
        }
        return saved;
    }
}
