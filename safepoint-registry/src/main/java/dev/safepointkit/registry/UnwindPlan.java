package dev.safepointkit.registry;

import dev.safepointkit.stackmap.dwarf.CfiRow;

/**
 * The codec of a safepoint's unwind plan: what the CFI of its function says at its call, packed
 * into one {@code long} at registration so that a walker applies it with shifts and masks.
 *
 * <pre>
 *   bit  63      1: a plan (0 as a whole: the object gave no {@code .eh_frame})
 *   bits 0-3     the CFA register: {@link #RSP} (the frame's SP at its call) or {@link #RBP}
 *   bits 4-23    the CFA offset from it, 0 to 2^20 - 1 bytes
 *   bits 24-59   six 6-bit slots, one per callee-saved register in {@link #CALLEE_SAVED} order:
 *                0 same value (not saved), {@link #UNDEFINED} (not recoverable),
 *                k in 1..62: the caller's value is saved at CFA - 8k
 * </pre>
 * The return address is always at CFA - 8 (checked at encoding). CFA is the caller's SP after the
 * return; the caller's return-address slot is therefore CFA - 8 + (the caller's own frame).
 *
 * <p>Stateless; any thread.
 */
public final class UnwindPlan {
    /** No plan: the object was registered without {@code .eh_frame}. */
    public static final long NONE = 0;
    /** DWARF numbers of the callee-saved registers the plan tracks, in slot order: RBX, RBP, R12-R15. */
    private static final int[] CALLEE_SAVED = {3, 6, 12, 13, 14, 15};
    /** The number of slots, {@code CALLEE_SAVED.length}. */
    public static final int SLOTS = 6;
    /** A slot's value for a register whose caller value the CFI marks undefined. */
    public static final int UNDEFINED = 63;
    /** DWARF RSP. */
    public static final int RSP = 7;
    /** DWARF RBP. */
    public static final int RBP = 6;

    private static final long PRESENT = 1L << 63;
    private static final int MAX_OFFSET = (1 << 20) - 1;
    private static final int RETURN_ADDRESS = 16;

    private UnwindPlan() {
    }

    /**
     * Packs a CFI row.
     *
     * @param row the row at the safepoint's call
     * @return the plan, never {@link #NONE}
     * @throws IllegalArgumentException naming what the plan cannot express: a CFA register other
     *     than RSP or RBP, an offset out of range, a return address not at CFA - 8, a callee-saved
     *     register saved other than at CFA - 8k for k in 1..62
     */
    public static long encode(CfiRow row) {
        int cfa = row.cfaRegister();
        if (cfa != RSP && cfa != RBP) {
            throw new IllegalArgumentException("CFA is based on R#" + cfa + "; only RSP and RBP are supported");
        }
        if (row.cfaOffset() < 8 || row.cfaOffset() > MAX_OFFSET) {
            throw new IllegalArgumentException("CFA offset " + row.cfaOffset() + " is outside [8, " + MAX_OFFSET + "]");
        }
        if (row.rule(RETURN_ADDRESS) != CfiRow.SAVED || row.savedOffset(RETURN_ADDRESS) != -8) {
            throw new IllegalArgumentException("the return address is not at CFA-8 (" + row + ")");
        }
        long plan = PRESENT | cfa | row.cfaOffset() << 4;
        for (int s = 0; s < SLOTS; s++) {
            int reg = CALLEE_SAVED[s];
            long k = switch (row.rule(reg)) {
                case CfiRow.SAME_VALUE -> 0;
                case CfiRow.UNDEFINED -> UNDEFINED;
                default -> {
                    long off = row.savedOffset(reg);
                    if (off >= 0 || off % 8 != 0 || -off / 8 >= UNDEFINED) {
                        throw new IllegalArgumentException("R#" + reg + " is saved at CFA" + off
                                + "; only CFA-8k for k in 1.." + (UNDEFINED - 1) + " is supported");
                    }
                    yield -off / 8;
                }
            };
            plan |= k << (24 + 6 * s);
        }
        return plan;
    }

    /**
     * The step a walker takes from a frame to its caller, in this codec, built at registration from
     * the plan and the stack map's frame size, so that a walk reads one value and never the frame
     * size: the plan itself, but with an RBP-based CFA replaced by RSP + frame size + 8 when the
     * frame size is static (the CFA is the same address, found without reading RBP); and for an
     * object without {@code .eh_frame}, CFA = RSP + frame size + 8, or for a dynamic frame
     * RBP + 16 with the caller's RBP at CFA - 16 (its frame pointer), every other register
     * {@link #UNDEFINED}: nothing says what the frame did with them.
     *
     * @param plan the safepoint's plan or {@link #NONE}
     * @param frameSize its function's stack map frame size, or a negative sentinel
     * @return the step, or {@link #NONE} when neither says where the caller is (no plan, no frame
     *     size), or the frame size is too large for the codec
     */
    static long walkStep(long plan, long frameSize) {
        boolean sized = frameSize >= 0 && frameSize + 8 <= MAX_OFFSET;
        if (present(plan)) {
            return cfaRegister(plan) == RBP && sized ? plan & ~0xFF_FFFFL | RSP | (frameSize + 8) << 4 : plan;
        }
        long unknown = 0;
        for (int s = 0; s < SLOTS; s++) {
            unknown |= (long) UNDEFINED << (24 + 6 * s);
        }
        if (sized) {
            return PRESENT | unknown | RSP | (frameSize + 8) << 4;
        }
        if (frameSize == Frame.DYNAMIC_FRAME_SIZE) {
            int rbp = slotOf(RBP);
            return PRESENT | unknown & ~(0x3fL << (24 + 6 * rbp)) | 2L << (24 + 6 * rbp) | RBP | 16 << 4;
        }
        return NONE;
    }

    /**
     * Whether {@code plan} is one ({@link #NONE} is not).
     *
     * @param plan a value from {@link #encode} or {@link #NONE}
     * @return true for a plan
     */
    public static boolean present(long plan) {
        return plan < 0;
    }

    /**
     * The CFA register of a plan.
     *
     * @param plan a present plan
     * @return {@link #RSP} or {@link #RBP}
     */
    public static int cfaRegister(long plan) {
        return (int) plan & 0xf;
    }

    /**
     * The CFA offset of a plan.
     *
     * @param plan a present plan
     * @return bytes from the CFA register, at least 8
     */
    public static int cfaOffset(long plan) {
        return (int) (plan >>> 4) & MAX_OFFSET;
    }

    /**
     * A callee-saved register's slot in a plan.
     *
     * @param plan a present plan
     * @param slot in {@code [0, SLOTS)}, as {@link #slotOf} gives it
     * @return 0 (same value), {@link #UNDEFINED}, or k: saved at CFA - 8k
     */
    public static int saved(long plan, int slot) {
        return (int) (plan >>> (24 + 6 * slot)) & 0x3f;
    }

    /**
     * The slot of a DWARF register.
     *
     * @param dwarf a DWARF register number
     * @return its slot in {@code [0, SLOTS)}, or -1 for a register that is not callee-saved
     */
    public static int slotOf(int dwarf) {
        return switch (dwarf) {
            case 3 -> 0;
            case 6 -> 1;
            case 12, 13, 14, 15 -> dwarf - 10;
            default -> -1;
        };
    }

    /**
     * The DWARF register of a slot.
     *
     * @param slot in {@code [0, SLOTS)}
     * @return its DWARF number
     */
    public static int registerOf(int slot) {
        return CALLEE_SAVED[slot];
    }

    /**
     * A plan for messages: {@code CFA=RSP+24 RBX=[CFA-16]}.
     *
     * @param plan a plan or {@link #NONE}
     * @return the text
     */
    public static String describe(long plan) {
        if (!present(plan)) {
            return "no unwind plan";
        }
        StringBuilder b = new StringBuilder("CFA=").append(cfaRegister(plan) == RSP ? "RSP" : "RBP").append('+').append(cfaOffset(plan));
        for (int s = 0; s < SLOTS; s++) {
            int k = saved(plan, s);
            if (k != 0) {
                b.append(" R#").append(CALLEE_SAVED[s]).append(k == UNDEFINED ? "=undefined" : "=[CFA-" + 8 * k + "]");
            }
        }
        return b.toString();
    }
}
