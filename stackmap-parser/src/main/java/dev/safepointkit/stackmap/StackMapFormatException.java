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
    private static final long serialVersionUID = 1L;

    private final long offset;
    private final String field;

    public StackMapFormatException(long offset, String field, String problem) {
        super("malformed stack map at byte " + offset + " (0x" + Long.toHexString(offset) + "), " + field + ": " + problem);
        this.offset = offset;
        this.field = field;
    }

    /** Byte offset of the offending field from the start of the section. */
    public long offset() {
        return offset;
    }

    /** The field, named as in LLVM's StackMaps documentation, with its index where it repeats. */
    public String field() {
        return field;
    }
}
