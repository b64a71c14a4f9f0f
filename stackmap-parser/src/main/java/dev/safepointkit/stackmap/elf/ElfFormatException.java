package dev.safepointkit.stackmap.elf;

import java.io.IOException;

/**
 * An ELF file that cannot be read: not ELF, not ELF64, truncated, or with a header, section or
 * symbol that points outside the file. The message names the byte offset and the field.
 */
public final class ElfFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    private final long offset;
    private final String field;

    public ElfFormatException(long offset, String field, String problem) {
        super("malformed ELF at byte " + offset + " (0x" + Long.toHexString(offset) + "), " + field + ": " + problem);
        this.offset = offset;
        this.field = field;
    }

    /** Byte offset of the offending field from the start of the file. */
    public long offset() {
        return offset;
    }

    public String field() {
        return field;
    }
}
