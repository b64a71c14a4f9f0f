package dev.safepointkit.stackmap;

import java.io.IOException;

/**
 * A stack map section that does not follow the format: truncated, a count that overflows the
 * section, an unknown location kind, an unsupported version.
 *
 * <p>The message names the byte offset (from the start of the section) and the field, so that a
 * malformed section can be inspected with a hex dump.
 */
public final class StackMapFormatException extends IOException {
    /** Version 1 of the serialized form: the message, {@code offset} and {@code field}. */
    private static final long serialVersionUID = 1L;

    /** Byte offset of the offending field from the start of the section. */
    private final long offset;
    /** The offending field's name, as in LLVM's StackMaps documentation. */
    private final String field;

    /**
     * Creates the exception; the message is built from all three arguments.
     *
     * @param offset byte offset of the offending field from the start of the section (not of the
     *     stack map, when the section holds several)
     * @param field the field, named as in LLVM's StackMaps documentation, with its index where it
     *     repeats, e.g. {@code StkMapRecord[3].NumLocations}
     * @param problem what is wrong with it, e.g. "needs 16 bytes, only 4 remain"
     */
    public StackMapFormatException(long offset, String field, String problem) {
        super("malformed stack map at byte " + offset + " (0x" + Long.toHexString(offset) + "), " + field + ": " + problem);
        this.offset = offset;
        this.field = field;
    }

    /**
     * Byte offset of the offending field from the start of the section.
     *
     * @return the offset, at least 0
     */
    public long offset() {
        return offset;
    }

    /**
     * The field, named as in LLVM's StackMaps documentation, with its index where it repeats.
     *
     * @return the field name given to the constructor
     */
    public String field() {
        return field;
    }
}
