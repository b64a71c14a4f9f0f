package dev.safepointkit.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The registry's one binary search, against a linear scan. */
class SortedTest {
    @Test
    void findsTheLastElementAtOrBeforeEveryKey() {
        long[] a = {-5, 0, 3, 3, 10, 20};
        for (int count = 0; count <= a.length; count++) {
            for (long key = -7; key <= 22; key++) {
                int last = -1;
                for (int i = 0; i < count; i++) {
                    if (a[i] <= key) {
                        last = i;
                    }
                }
                assertEquals(last, Sorted.lastAtOrBefore(a, count, key), "count " + count + ", key " + key);
                int index = last >= 0 && a[last] == key ? last : -1;
                assertEquals(index, Sorted.indexOf(a, count, key), "count " + count + ", key " + key);
            }
        }
        assertEquals(6, Sorted.insertionPoint(a, 21));
        assertEquals(0, Sorted.insertionPoint(a, -6));
        assertEquals(4, Sorted.insertionPoint(a, 4));
    }
}
