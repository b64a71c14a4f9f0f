package dev.safepointkit.stackmap.elf;

import java.io.IOException;

/**
 * An ELF file that cannot be read: not ELF, not ELF64, truncated, or with a header, section or
 * symbol that points outside the file. The message names the byte offset and the field.
 */
public final class ElfFormatException extends IOException {
    /** Version 1 of the serialized form: the message, {@code offset} and {@code field}. */
    private static final long serialVersionUID = 1L;

    /** Byte offset of the offending field from the start of the file. */
    private final long offset;
    /** The offending field or structure, named as in the ELF specification. */
    private final String field;

    /**
     * Creates the exception; the message is built from all three arguments.
     *
     * @param offset byte offset of the offending field from the start of the file; 0 when the
     *     problem is not in one field (for example a missing section)
     * @param field the field, named as in the ELF specification with its table index, e.g.
     *     {@code section[5].sh_link}, or the section or relocation concerned
     * @param problem what is wrong with it
     */
    public ElfFormatException(long offset, String field, String problem) {
        super("malformed ELF at byte " + offset + " (0x" + Long.toHexString(offset) + "), " + field + ": " + problem);
        this.offset = offset;
        this.field = field;
    }

    /**
     * Byte offset of the offending field from the start of the file.
     *
     * @return the offset given to the constructor
     */
    public long offset() {
        return offset;
    }

    /**
     * The offending field, named as in the ELF specification with its table index where it
     * repeats.
     *
     * @return the field name given to the constructor
     */
    public String field() {
        return field;
    }
}
