package dev.safepointkit.stackmap;

/**
 * A record's locations, all read at once into arrays the caller owns and reuses:
 * {@link RecordCursor#locations(LocationArray)} fills it from the record's bytes with one bulk
 * copy, and the getters read the array. Once it has grown to the largest record read, filling
 * it allocates nothing.
 *
 * <p>Where a {@link LocationCursor} reads one location per call, this reads a record's in one
 * copy, which is what a caller that goes through every location wants: its own loop then runs
 * over a plain array, with none of the segment's checks.
 *
 * <p>Mutable: one thread at a time may fill and read it (keep one per thread). What it holds is a
 * copy: it does not see later writes to the section.
 */
public final class LocationArray {
    /**
     * The locations' bytes as a little-endian section holds them, three 32-bit words each:
     * u8 Type, u8 0, u16 Size; u16 DwarfRegNum, u16 0; i32 OffsetOrSmallConstant.
     */
    int[] raw;
    int count;

    /** An empty array, which grows to fit the records it is filled from. */
    public LocationArray() {
        this(8);
    }

    /**
     * An empty array with room for {@code capacity} locations before it grows.
     *
     * @param capacity the number of locations to make room for, at least 0
     * @throws IllegalArgumentException if {@code capacity} is negative
     */
    public LocationArray(int capacity) {
        if (capacity < 0) {
            throw new IllegalArgumentException("capacity " + capacity);
        }
        raw = new int[3 * capacity];
    }

    /** Makes room for {@code n} locations, keeping none of the old ones. */
    void clearFor(int n) {
        if (3 * n > raw.length) {
            raw = new int[3 * Math.max(n, raw.length / 3 * 2)];
        }
        count = n;
    }

    /**
     * The number of locations the last fill read.
     *
     * @return the record's {@link RecordCursor#locationCount()}; 0 before the first fill
     */
    public int count() {
        return count;
    }

    private int check(int i) {
        if (Integer.compareUnsigned(i, count) >= 0) {
            throw new IndexOutOfBoundsException("location " + i + " of " + count);
        }
        return i;
    }

    /**
     * Location {@code i}'s Type byte.
     *
     * @param i in {@code [0, count())}
     * @return the kind's code, 1 to 5 (see {@link LocationKind#code()})
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public int kindCode(int i) {
        return raw[3 * check(i)] & 0xFF;
    }

    /**
     * Location {@code i}'s kind.
     *
     * @param i in {@code [0, count())}
     * @return the kind, from the Type byte (validated when the stack map was parsed)
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public LocationKind kind(int i) {
        return LocationKind.ofValidCode(kindCode(i));
    }

    /**
     * Location {@code i}'s Size field (see {@link LocationCursor#sizeInBytes()}).
     *
     * @param i in {@code [0, count())}
     * @return the u16 Size field
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public int sizeInBytes(int i) {
        return raw[3 * check(i)] >>> 16;
    }

    /**
     * Location {@code i}'s DWARF register (see {@link LocationCursor#dwarfRegNum()}).
     *
     * @param i in {@code [0, count())}
     * @return the u16 DWARF register number
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public int dwarfRegNum(int i) {
        return raw[3 * check(i) + 1] & 0xFFFF;
    }

    /**
     * Location {@code i}'s signed offset from its register, for Direct and Indirect.
     *
     * @param i in {@code [0, count())}
     * @return the offset in bytes, the 32-bit field read signed
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public int offset(int i) {
        return raw[3 * check(i) + 2];
    }

    /**
     * Location {@code i}'s value if it is a Constant: the 32-bit field, sign-extended.
     *
     * @param i in {@code [0, count())}
     * @return the constant, in {@code [-2^31, 2^31)}
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public long smallConstant(int i) {
        return raw[3 * check(i) + 2];
    }

    /**
     * Location {@code i}'s 32-bit field as stored, unsigned.
     *
     * @param i in {@code [0, count())}
     * @return the field, in {@code [0, 2^32)}
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public long rawConstantField(int i) {
        return Integer.toUnsignedLong(raw[3 * check(i) + 2]);
    }

    /**
     * Location {@code i}'s index into the constants table, if it is a ConstantIndex (validated to
     * be in range).
     *
     * @param i in {@code [0, count())}
     * @return the index, below {@link StackMap#constantCount()}, for a ConstantIndex location
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public int constantIndex(int i) {
        return raw[3 * check(i) + 2];
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("LocationArray[");
        for (int i = 0; i < count; i++) {
            s.append(i == 0 ? "" : ", ").append(kind(i)).append(" R#").append(dwarfRegNum(i)).append(' ')
                    .append(offset(i)).append(" size ").append(sizeInBytes(i));
        }
        return s.append(']').toString();
    }
}
