package dev.safepointkit.stackmap.internal;

import dev.safepointkit.stackmap.ObjectFormatException;

/**
 * Checks that ranges named by a Mach-O or COFF file's fields lie inside the file, before they
 * are read. Immutable.
 */
public final class Extents {
    private final String format;
    private final long size;

    public Extents(String format, long size) {
        this.format = format;
        this.size = size;
    }

    /**
     * Requires {@code [offset, offset + length)} inside the file, without overflow whatever the two
     * are.
     */
    public void require(long offset, long length, long fieldOffset, String field) throws ObjectFormatException {
        if (offset < 0 || length < 0 || offset > size || length > size - offset) {
            throw error(fieldOffset, field, Long.toUnsignedString(length) + " bytes at " + offset + " lie outside the file of "
                    + size + " bytes");
        }
    }

    public ObjectFormatException error(long fieldOffset, String field, String problem) {
        return new ObjectFormatException(format, fieldOffset, field, problem);
    }

    /** A NUL-terminated name of at most {@code max} bytes at {@code offset} (already checked to be present). */
    public static String fixedName(ByteReader in, long offset, int max) {
        StringBuilder name = new StringBuilder(max);
        for (int i = 0; i < max; i++) {
            int c = in.u8(offset + i);
            if (c == 0) {
                break;
            }
            name.append((char) c);
        }
        return name.toString();
    }

    /**
     * The NUL-terminated string at {@code index} of the string table at {@code [table, table + tableSize)}.
     */
    public String tableString(ByteReader in, long table, long tableSize, long index, long fieldOffset, String field)
            throws ObjectFormatException {
        if (index < 0 || index >= tableSize) {
            throw error(fieldOffset, field, "string index " + index + " is outside the string table of " + tableSize + " bytes");
        }
        StringBuilder name = new StringBuilder();
        for (long i = table + index; i < table + tableSize; i++) {
            int c = in.u8(i);
            if (c == 0) {
                return name.toString();
            }
            name.append((char) c);
        }
        throw error(fieldOffset, field, "the string at index " + index + " is not terminated inside the string table");
    }
}
