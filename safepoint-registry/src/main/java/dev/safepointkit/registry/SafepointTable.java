package dev.safepointkit.registry;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.List;

/**
 * The registry's one global index from return address to safepoint: an open-addressing table of
 * {@code [key, value]} pairs that the (single, locked) writer fills in place while readers probe.
 *
 * <p>value = object slot (24 bits) << 40 | safepoint index (24 bits) << 16 | frame size (16 bits,
 * {@link #FRAME_SIZE_IN_TABLE} when it does not fit). An entry counts only while its object is
 * published ({@link ObjectTable#isPublished}); entries of unpublished or removed objects are
 * skipped and the probe goes on. Keys only ever go from 0 to a return address: removal leaves
 * the entry as a tombstone, and a rebuild ({@link #rebuild}) drops tombstones into a new table.
 * Object slots are never reused within one table, so a stale entry can never name a newer object.
 *
 * <p>Memory ordering: the writer stores an entry's value (volatile), then its key with release; a
 * reader loads the key with acquire, then the value (volatile). A key never changes once stored;
 * its value does when code is registered again at a removed object's return address. The writer
 * stores an object into its slot with release before any of its entries; readers load it with
 * acquire. (On x86-64 the reader's acquire and volatile loads are plain loads.)
 *
 * <p>Not thread safe for writers (the registry serializes them); any number of readers.
 */
final class SafepointTable {
    static final int FRAME_SIZE_IN_TABLE = 0xFFFF;
    static final int MAX_OBJECTS = 1 << 24;
    static final int MAX_SAFEPOINTS_PER_OBJECT = 1 << 24;

    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final VarHandle OBJECTS = MethodHandles.arrayElementVarHandle(ObjectTable[].class);

    final long[] slots;
    final ObjectTable[] objects;
    final int mask;
    /** Slots holding a key, tombstones included (writer only). */
    private int used;
    /** Object slots handed out (writer only). */
    private int objectCount;

    private SafepointTable(int capacity, int objectCapacity) {
        slots = new long[capacity * 2];
        objects = new ObjectTable[objectCapacity];
        mask = capacity - 1;
    }

    static final SafepointTable EMPTY = new SafepointTable(2, 1);

    /** A new table holding {@code live} (all published or about to be) with room to grow. */
    static SafepointTable rebuild(List<ObjectTable> live, int extraSafepoints) {
        long safepoints = extraSafepoints;
        for (ObjectTable t : live) {
            safepoints += t.safepointCount();
        }
        int capacity = Integer.highestOneBit((int) Math.max(8, Math.min(1 << 29, safepoints * 4 - 1))) << 1;
        // Object slots are not reused within a table: room for many loads before the next rebuild.
        int objectCapacity = Math.max(64, Integer.highestOneBit(live.size() * 4 + 1) << 1);
        SafepointTable table = new SafepointTable(capacity, Math.min(objectCapacity, MAX_OBJECTS));
        for (ObjectTable t : live) {
            table.insert(t);
        }
        return table;
    }

    /** Whether {@code object} fits in place without passing the load limit or the object slots. */
    boolean hasRoomFor(ObjectTable object) {
        return objectCount < objects.length && (long) used + object.safepointCount() <= (mask + 1L) / 2;
    }

    /** Tombstones make up more than half of the used slots. */
    boolean worthCompacting(long liveSafepoints) {
        return used > 64 && used - liveSafepoints > liveSafepoints;
    }

    /** Adds every safepoint of {@code object}; readers ignore them until it is published. */
    void insert(ObjectTable object) {
        int objectSlot = objectCount++;
        OBJECTS.setRelease(objects, objectSlot, object);
        for (int i = 0; i < object.safepointCount(); i++) {
            long key = object.spAddress[i];
            long frameSize = object.fnFrameSize[object.spFunction[i]];
            long packedSize = frameSize >= 0 && frameSize < FRAME_SIZE_IN_TABLE ? frameSize : FRAME_SIZE_IN_TABLE;
            long value = (long) objectSlot << 40 | (long) i << 16 | packedSize;
            int slot = hash(key) & mask;
            while (true) {
                long k = slots[2 * slot];
                if (k == 0) {
                    LONGS.setVolatile(slots, 2 * slot + 1, value);
                    LONGS.setRelease(slots, 2 * slot, key);
                    used++;
                    break;
                }
                if (k == key) {
                    // Code reused at a removed object's address (the overlap check guarantees that
                    // object is unpublished): take over its entry, or probes would lengthen with
                    // every reuse. Only the value changes under a fixed key; it is written and read
                    // volatile, so a reader sees either the old, unpublished object or this one.
                    LONGS.setVolatile(slots, 2 * slot + 1, value);
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
    }

    /**
     * Fills {@code frame} with the published safepoint at {@code returnAddress}. Wait-free: the
     * table is at most half full, so the probe reaches an empty slot.
     */
    boolean lookup(long returnAddress, Frame frame) {
        long[] s = slots;
        int m = mask;
        int slot = hash(returnAddress) & m;
        while (true) {
            long k = (long) LONGS.getAcquire(s, 2 * slot);
            if (k == 0) {
                return false;
            }
            if (k == returnAddress) {
                long value = (long) LONGS.getVolatile(s, 2 * slot + 1);
                ObjectTable object = (ObjectTable) OBJECTS.getAcquire(objects, (int) (value >>> 40));
                if (object.isPublished()) {
                    frame.setSafepoint(object, (int) (value >>> 16) & 0xFF_FFFF, (int) value & 0xFFFF);
                    return true;
                }
                // An entry of an object not (or no longer) published: a newer one may follow.
            }
            slot = (slot + 1) & m;
        }
    }

    static int hash(long address) {
        long h = address * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 32));
    }
}
