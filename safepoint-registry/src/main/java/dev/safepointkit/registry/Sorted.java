package dev.safepointkit.registry;

/**
 * The registry's one binary search, over a prefix of a sorted {@code long[]} (object code starts,
 * function starts): every lookup by address in this package goes through it.
 *
 * <p>Stateless; any thread (the arrays it is given are immutable or the caller's own).
 */
final class Sorted {
    private Sorted() {
    }

    /**
     * The last of the first {@code count} elements of {@code sorted} (ascending) that is at most
     * {@code key}.
     *
     * @return its index, or -1 when every element is greater (or count is 0)
     */
    static int lastAtOrBefore(long[] sorted, int count, long key) {
        int lo = 0;
        int hi = count - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (sorted[mid] <= key) {
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return hi;
    }

    /**
     * The index of {@code key} among the first {@code count} elements of {@code sorted}
     * (ascending, distinct), or -1.
     */
    static int indexOf(long[] sorted, int count, long key) {
        int i = lastAtOrBefore(sorted, count, key);
        return i >= 0 && sorted[i] == key ? i : -1;
    }

    /** Where {@code key} goes in {@code sorted} (ascending) to keep it sorted: after every element at most key. */
    static int insertionPoint(long[] sorted, long key) {
        return lastAtOrBefore(sorted, sorted.length, key) + 1;
    }
}
