package dev.safepointkit.stackmap;

/**
 * A record's live-outs, all read at once into an array the caller owns and reuses:
 * {@link RecordCursor#liveOuts(LiveOutArray)} fills it, and the getters read the array. Once it
 * has grown to the largest record read, filling it allocates nothing.
 *
 * <p>Mutable: one thread at a time may fill and read it (keep one per thread). What it holds is a
 * copy: it does not see later writes to the section.
 */
public final class LiveOutArray {
    /** Each entry as a little-endian 32-bit word: u16 DwarfRegNum (swapped in for big-endian), u8 0, u8 Size. */
    int[] entries;
    int count;

    /** An empty array, which grows to fit the records it is filled from. */
    public LiveOutArray() {
        this(8);
    }

    /**
     * An empty array with room for {@code capacity} live-outs before it grows.
     *
     * @param capacity the number of live-outs to make room for, at least 0
     * @throws IllegalArgumentException if {@code capacity} is negative
     */
    public LiveOutArray(int capacity) {
        if (capacity < 0) {
            throw new IllegalArgumentException("capacity " + capacity);
        }
        entries = new int[capacity];
    }

    /** Makes room for {@code n} live-outs, keeping none of the old ones. */
    void clearFor(int n) {
        if (n > entries.length) {
            entries = new int[Math.max(n, entries.length * 2)];
        }
        count = n;
    }

    /**
     * The number of live-outs the last fill read.
     *
     * @return the record's {@link RecordCursor#liveOutCount()}; 0 before the first fill
     */
    public int count() {
        return count;
    }

    private int check(int i) {
        if (Integer.compareUnsigned(i, count) >= 0) {
            throw new IndexOutOfBoundsException("live-out " + i + " of " + count);
        }
        return i;
    }

    /**
     * Live-out {@code i}'s register.
     *
     * @param i in {@code [0, count())}
     * @return its DWARF register number
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public int dwarfRegNum(int i) {
        return entries[check(i)] & 0xFFFF;
    }

    /**
     * How much of live-out {@code i}'s register is live.
     *
     * @param i in {@code [0, count())}
     * @return the size in bytes, from the u8 field
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public int sizeInBytes(int i) {
        return entries[check(i)] >>> 24;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("LiveOutArray[");
        for (int i = 0; i < count; i++) {
            s.append(i == 0 ? "" : ", ").append("R#").append(dwarfRegNum(i)).append(" (").append(sizeInBytes(i))
                    .append(" bytes)");
        }
        return s.append(']').toString();
    }
}
