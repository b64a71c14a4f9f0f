package dev.safepointkit.stackmap.dwarf;

import java.io.IOException;

/**
 * An {@code .eh_frame} section, or a call frame program in it, that this reader does not accept:
 * truncated, inconsistent, or using a feature it does not support (named, never skipped).
 *
 * <p>The message names the byte offset from the start of the section and the record or opcode,
 * so that the section can be inspected with {@code llvm-dwarfdump --eh-frame}.
 */
public final class CfiFormatException extends IOException {
    /** Version 1 of the serialized form: the message and {@code offset}. */
    private static final long serialVersionUID = 1L;

    /** Byte offset of the offending field from the start of the section. */
    private final long offset;

    /**
     * Creates the exception; the message is built from all three arguments.
     *
     * @param offset byte offset of the offending field from the start of the section
     * @param where the record and field, e.g. {@code FDE at 0x18, DW_CFA_def_cfa_expression}
     * @param problem what is wrong or unsupported
     */
    public CfiFormatException(long offset, String where, String problem) {
        super("unsupported or malformed .eh_frame at byte " + offset + " (0x" + Long.toHexString(offset) + "), " + where + ": "
                + problem);
        this.offset = offset;
    }

    /**
     * Byte offset of the offending field from the start of the section.
     *
     * @return the offset, at least 0
     */
    public long offset() {
        return offset;
    }
}
