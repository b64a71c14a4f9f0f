package dev.safepointkit.stackmap.dwarf;

import java.util.ArrayDeque;
import java.util.Arrays;

/**
 * One row of the call frame table of x86-64 code: how to compute the canonical frame address
 * (CFA) at a PC, and the rule of each register column 0 (RAX) to 16 (the return address).
 *
 * <p>Supported rules: the CFA as register + offset; a register saved at CFA + offset, the same
 * value as in the caller, or undefined. A register no instruction mentions keeps the same value
 * (what an x86-64 callee-saved register without a save is). Anything else an FDE asks for
 * ({@code DW_CFA_def_cfa_expression}, {@code DW_CFA_expression}, {@code DW_CFA_val_*},
 * {@code DW_CFA_register}, vendor opcodes but {@code DW_CFA_GNU_args_size}) is refused with a
 * {@link CfiFormatException} naming the FDE and the opcode.
 *
 * <p>Immutable; any thread.
 */
public final class CfiRow {
    /** The number of register columns: DWARF 0 to 16. */
    public static final int COLUMNS = 17;
    /** {@link #rule}: the column's register holds the caller's value (unchanged). */
    public static final int SAME_VALUE = 0;
    /** {@link #rule}: the caller's value is saved at CFA + {@link #savedOffset}. */
    public static final int SAVED = 1;
    /** {@link #rule}: the caller's value cannot be recovered. */
    public static final int UNDEFINED = 2;

    private final int cfaRegister;
    private final long cfaOffset;
    private final int[] rules;
    private final long[] offsets;

    private CfiRow(int cfaRegister, long cfaOffset, int[] rules, long[] offsets) {
        this.cfaRegister = cfaRegister;
        this.cfaOffset = cfaOffset;
        this.rules = rules;
        this.offsets = offsets;
    }

    /**
     * The CFA's register: CFA = value of this register at the PC + {@link #cfaOffset()}.
     *
     * @return the DWARF register number
     */
    public int cfaRegister() {
        return cfaRegister;
    }

    /**
     * The CFA's offset from {@link #cfaRegister()}.
     *
     * @return the signed offset in bytes
     */
    public long cfaOffset() {
        return cfaOffset;
    }

    /**
     * The rule of a register column.
     *
     * @param column a DWARF register number in {@code [0, COLUMNS)}
     * @return {@link #SAME_VALUE}, {@link #SAVED} or {@link #UNDEFINED}
     */
    public int rule(int column) {
        return rules[column];
    }

    /**
     * Where a {@link #SAVED} column's caller value is, relative to the CFA.
     *
     * @param column a DWARF register number in {@code [0, COLUMNS)} whose rule is {@link #SAVED}
     * @return the signed offset in bytes from the CFA
     */
    public long savedOffset(int column) {
        return offsets[column];
    }

    /**
     * The row that applies at {@code pc}: the CIE's initial instructions, then the FDE's program
     * until the location passes {@code pc}.
     *
     * @param frame the section {@code fde} belongs to
     * @param fde an FDE that covers {@code pc}
     * @param pc an absolute address in the FDE's range
     * @return the row
     * @throws CfiFormatException if the program is malformed, uses an unsupported opcode or rule,
     *     or leaves the CFA undefined; the message names the FDE and the opcode
     * @throws IllegalArgumentException if {@code fde} does not cover {@code pc}
     */
    public static CfiRow at(EhFrame frame, EhFrame.Fde fde, long pc) throws CfiFormatException {
        if (!fde.covers(pc)) {
            throw new IllegalArgumentException("the FDE at 0x" + Long.toHexString(fde.offset()) + " does not cover 0x"
                    + Long.toHexString(pc));
        }
        State initial = new State();
        EhFrame.Cie cie = fde.cie();
        EhFrame.Reader in = new EhFrame.Reader(frame.section(), frame.address());
        run(in, cie, fde, cie.instructions(), cie.instructionsEnd(), null, Long.MAX_VALUE, "CIE at 0x" + Long.toHexString(cie.offset()),
                initial);
        State row = initial.copy();
        run(in, cie, fde, fde.instructions(), fde.instructionsEnd(), initial, pc, "FDE at 0x" + Long.toHexString(fde.offset()), row);
        if (row.cfaRegister < 0) {
            throw new CfiFormatException(fde.offset(), "FDE at 0x" + Long.toHexString(fde.offset()),
                    "no CFA rule at 0x" + Long.toHexString(pc));
        }
        return new CfiRow(row.cfaRegister, row.cfaOffset, row.rules, row.offsets);
    }

    private static final class State {
        int cfaRegister = -1;
        long cfaOffset;
        int[] rules = new int[COLUMNS];
        long[] offsets = new long[COLUMNS];

        State copy() {
            State s = new State();
            s.cfaRegister = cfaRegister;
            s.cfaOffset = cfaOffset;
            s.rules = rules.clone();
            s.offsets = offsets.clone();
            return s;
        }
    }

    private static void run(EhFrame.Reader in, EhFrame.Cie cie, EhFrame.Fde fde, long p, long end, State initial, long pc,
            String where, State s) throws CfiFormatException {
        in.limit(end, where);
        long loc = fde.pcBegin();
        ArrayDeque<State> remembered = new ArrayDeque<>();
        while (p < end) {
            long at = p;
            int op = in.u8(p++);
            int high = op & 0xc0;
            int low = op & 0x3f;
            long advance = -1;
            if (high == 0x40) {
                advance = low;
            } else if (high == 0x80) {
                long off = in.uleb(p);
                p = in.next;
                save(s, column(low, at, where, op), off * cie.dataAlignment());
            } else if (high == 0xc0) {
                restore(s, initial, column(low, at, where, op), at, where);
            } else {
                switch (op) {
                    case 0x00 -> { }                                    // DW_CFA_nop
                    case 0x01 -> {                                      // DW_CFA_set_loc
                        long target = in.pointer(p, cie.fdeEncoding(), "DW_CFA_set_loc");
                        p = in.next;
                        if (Long.compareUnsigned(target, loc) < 0) {
                            throw new CfiFormatException(at, where + ", DW_CFA_set_loc", "moves the location backwards");
                        }
                        if (Long.compareUnsigned(target, pc) > 0) {
                            return;
                        }
                        loc = target;
                    }
                    case 0x02 -> advance = in.u8(p++);                // DW_CFA_advance_loc1
                    case 0x03 -> {                                      // DW_CFA_advance_loc2
                        advance = in.u8(p) | in.u8(p + 1) << 8;
                        p += 2;
                    }
                    case 0x04 -> {                                      // DW_CFA_advance_loc4
                        advance = in.u8(p) | in.u8(p + 1) << 8 | in.u8(p + 2) << 16 | (long) in.u8(p + 3) << 24;
                        p += 4;
                    }
                    case 0x05, 0x11 -> {                                // DW_CFA_offset_extended(_sf)
                        int reg = (int) in.uleb(p);
                        p = in.next;
                        long off = op == 0x05 ? in.uleb(p) : in.sleb(p);
                        p = in.next;
                        save(s, column(reg, at, where, op), off * cie.dataAlignment());
                    }
                    case 0x06 -> {                                      // DW_CFA_restore_extended
                        int reg = (int) in.uleb(p);
                        p = in.next;
                        restore(s, initial, column(reg, at, where, op), at, where);
                    }
                    case 0x07, 0x08 -> {                                // DW_CFA_undefined, DW_CFA_same_value
                        int reg = column((int) in.uleb(p), at, where, op);
                        p = in.next;
                        s.rules[reg] = op == 0x07 ? UNDEFINED : SAME_VALUE;
                        s.offsets[reg] = 0;
                    }
                    case 0x0a -> remembered.push(s.copy());             // DW_CFA_remember_state
                    case 0x0b -> {                                      // DW_CFA_restore_state
                        State r = remembered.poll();
                        if (r == null) {
                            throw new CfiFormatException(at, where + ", DW_CFA_restore_state", "nothing remembered");
                        }
                        s.cfaRegister = r.cfaRegister;
                        s.cfaOffset = r.cfaOffset;
                        s.rules = r.rules;
                        s.offsets = r.offsets;
                    }
                    case 0x0c, 0x12 -> {                                // DW_CFA_def_cfa(_sf)
                        s.cfaRegister = column((int) in.uleb(p), at, where, op);
                        p = in.next;
                        s.cfaOffset = op == 0x0c ? in.uleb(p) : in.sleb(p) * cie.dataAlignment();
                        p = in.next;
                    }
                    case 0x0d -> {                                      // DW_CFA_def_cfa_register
                        requireCfa(s, at, where, "DW_CFA_def_cfa_register");
                        s.cfaRegister = column((int) in.uleb(p), at, where, op);
                        p = in.next;
                    }
                    case 0x0e, 0x13 -> {                                // DW_CFA_def_cfa_offset(_sf)
                        requireCfa(s, at, where, op == 0x0e ? "DW_CFA_def_cfa_offset" : "DW_CFA_def_cfa_offset_sf");
                        s.cfaOffset = op == 0x0e ? in.uleb(p) : in.sleb(p) * cie.dataAlignment();
                        p = in.next;
                    }
                    case 0x2e -> {                                      // DW_CFA_GNU_args_size: no effect on the row
                        in.uleb(p);
                        p = in.next;
                    }
                    default -> throw new CfiFormatException(at, where + ", " + opcodeName(op), "not supported");
                }
            }
            if (advance >= 0) {
                long target = loc + advance * cie.codeAlignment();
                if (Long.compareUnsigned(target, pc) > 0) {
                    return;
                }
                loc = target;
            }
        }
    }

    private static void requireCfa(State s, long at, String where, String op) throws CfiFormatException {
        if (s.cfaRegister < 0) {
            throw new CfiFormatException(at, where + ", " + op, "changes a CFA rule that was never defined");
        }
    }

    private static int column(int reg, long at, String where, int op) throws CfiFormatException {
        if (reg < 0 || reg >= COLUMNS) {
            throw new CfiFormatException(at, where + ", " + opcodeName(op), "register column " + reg
                    + " (only 0 to 16, the general registers and the return address, are supported)");
        }
        return reg;
    }

    private static void save(State s, int reg, long offset) {
        s.rules[reg] = SAVED;
        s.offsets[reg] = offset;
    }

    private static void restore(State s, State initial, int reg, long at, String where) throws CfiFormatException {
        if (initial == null) {
            throw new CfiFormatException(at, where + ", DW_CFA_restore", "in a CIE's initial instructions");
        }
        s.rules[reg] = initial.rules[reg];
        s.offsets[reg] = initial.offsets[reg];
    }

    /** The DWARF name of a primary or extended opcode, for messages. */
    static String opcodeName(int op) {
        return switch (op & 0xc0) {
            case 0x40 -> "DW_CFA_advance_loc";
            case 0x80 -> "DW_CFA_offset";
            case 0xc0 -> "DW_CFA_restore";
            default -> switch (op) {
                case 0x05 -> "DW_CFA_offset_extended";
                case 0x06 -> "DW_CFA_restore_extended";
                case 0x07 -> "DW_CFA_undefined";
                case 0x08 -> "DW_CFA_same_value";
                case 0x09 -> "DW_CFA_register";
                case 0x0c -> "DW_CFA_def_cfa";
                case 0x0d -> "DW_CFA_def_cfa_register";
                case 0x0f -> "DW_CFA_def_cfa_expression";
                case 0x10 -> "DW_CFA_expression";
                case 0x11 -> "DW_CFA_offset_extended_sf";
                case 0x12 -> "DW_CFA_def_cfa_sf";
                case 0x14 -> "DW_CFA_val_offset";
                case 0x15 -> "DW_CFA_val_offset_sf";
                case 0x16 -> "DW_CFA_val_expression";
                case 0x2f -> "DW_CFA_GNU_negative_offset_extended";
                default -> "opcode 0x" + Integer.toHexString(op);
            };
        };
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("CFA=R#" + cfaRegister + (cfaOffset >= 0 ? "+" : "") + cfaOffset);
        for (int r = 0; r < COLUMNS; r++) {
            if (rules[r] == SAVED) {
                b.append(" R#").append(r).append("=[CFA").append(offsets[r] >= 0 ? "+" : "").append(offsets[r]).append(']');
            } else if (rules[r] == UNDEFINED) {
                b.append(" R#").append(r).append("=undefined");
            }
        }
        return b.toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CfiRow r && r.cfaRegister == cfaRegister && r.cfaOffset == cfaOffset && Arrays.equals(r.rules, rules)
                && Arrays.equals(r.offsets, offsets);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(cfaOffset) * 31 + cfaRegister + Arrays.hashCode(rules);
    }
}
