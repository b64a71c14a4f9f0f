package dev.safepointkit.stackmap;

import java.io.IOException;

/**
 * A Mach-O or COFF object that cannot be read: truncated, of another kind, or with a load command,
 * section, relocation or symbol that points outside the file. The message names the format, the
 * byte offset and the field. (ELF files have their own {@link dev.safepointkit.stackmap.elf.ElfFormatException}.)
 */
public final class ObjectFormatException extends IOException {
    /** Version 1 of the serialized form: the message, {@code offset} and {@code field}. */
    private static final long serialVersionUID = 1L;

    /** Byte offset of the offending field from the start of the file. */
    private final long offset;
    /** The offending field or structure, named as in the format's specification. */
    private final String field;

    /**
     * Creates the exception; the message is built from all four arguments.
     *
     * @param format the file format, {@code Mach-O} or {@code COFF}
     * @param offset byte offset of the offending field from the start of the file; 0 when the
     *     problem is not in one field (for example a missing symbol table)
     * @param field the field with its table index, e.g. {@code section[2].reloff}
     * @param problem what is wrong with it
     */
    public ObjectFormatException(String format, long offset, String field, String problem) {
        super("malformed " + format + " at byte " + offset + " (0x" + Long.toHexString(offset) + "), " + field + ": " + problem);
        this.offset = offset;
        this.field = field;
    }

    /**
     * Byte offset of the offending field from the start of the file.
     *
     * @return the offset, at least 0
     */
    public long offset() {
        return offset;
    }

    /**
     * The offending field, with its table index where it repeats.
     *
     * @return the field name given to the constructor
     */
    public String field() {
        return field;
    }
}
