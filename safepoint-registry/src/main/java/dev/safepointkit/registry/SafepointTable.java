package dev.safepointkit.registry;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * An open-addressing table (linear probing) of {@code [key, value]} pairs from return address to
 * safepoint, which the (single, locked) writer fills in place while readers probe. The registry
 * reads through one table at a time; when it must grow or shed removed entries, the writer fills
 * a bigger (or smaller) successor a bounded chunk per registration and publishes it when it holds
 * every live entry ({@link SafepointRegistry} does the stepping): no registration ever pays for
 * the whole table.
 *
 * <p>value = object slot (24 bits) << 40 | safepoint index (24 bits) << 16 | frame size (16 bits,
 * {@link #FRAME_SIZE_IN_TABLE} when it does not fit), or {@link #RETIRED}. The object slot names
 * an entry of the registry's {@link ObjectSlots}. Keys only ever go from 0 to a return address;
 * unregistering an object retires its entries (value {@link #RETIRED}), a registration at the
 * same return address takes the entry over, and a successor table copies only live entries.
 *
 * <p>Memory ordering (the reader's side is {@link #lookup}; every racy access is listed):
 * <ol>
 *   <li>Entries: the writer stores an entry's value (setVolatile), then, for a new entry, its key
 *       (setRelease); a reader loads the key (getAcquire), then the value (getAcquire). A key
 *       never changes once stored, so a key has one entry; its value does (retired, taken
 *       over). The writer's plain reads of its own entries race with nothing.</li>
 *   <li>Objects: an entry counts only while the object in its slot is published in the
 *       {@link ObjectSlots#published} array. The writer puts all of an object's entries before it
 *       publishes the object's array (setRelease), unpublishes it (a new array, setRelease)
 *       before retiring any entry, and frees the slot only after retiring every entry naming
 *       it, in this table and in a successor being filled. A reader loads the array
 *       (getAcquire), then the registry's table (getAcquire), probes, then loads the array
 *       again (getAcquire). When both loads return the same array and it holds an object in the
 *       value's slot, the value is that object's own: a value of the slot's earlier owner was
 *       retired before the array was published, so the reader, which acquired the array and
 *       then a table at least as new, cannot read it; a later owner's value, or the retirement,
 *       is stored after an unpublication, so a reader that read it would have acquired a newer
 *       array the second time.</li>
 *   <li>When the two arrays differ (a writer published or unpublished meanwhile), the reader
 *       takes the object in the value's slot in the second array only if that object's own
 *       arrays put the value's safepoint at the return address; it answers that object's frame
 *       size, not the value's.</li>
 *   <li>Tables: a successor is filled privately and published with one release store of the
 *       registry's table field; readers load that field with acquire. The old table is no
 *       longer written, which item 2 allows for: a reader holding it loaded the objects' array
 *       before it, when the old table was still current.</li>
 * </ol>
 * (On x86-64 the reader's acquire loads are plain loads.)
 *
 * <p>Not thread safe for writers (the registry serializes them); any number of readers.
 */
final class SafepointTable {
    static final int FRAME_SIZE_IN_TABLE = 0xFFFF;
    static final int MAX_SAFEPOINTS_PER_OBJECT = 1 << 24;
    /**
     * The safepoint index of a value that names an object but no safepoint in it ({@link #valueOfObject}):
     * never a safepoint's, since an object has fewer than {@link #MAX_SAFEPOINTS_PER_OBJECT}.
     */
    static final int NO_SAFEPOINT = MAX_SAFEPOINTS_PER_OBJECT - 1;
    /** The value of a retired entry: its object was unregistered. Names no slot ({@link ObjectSlots#MAX}). */
    static final long RETIRED = -1L;
    /** The most slots a table may have. */
    static final int MAX_CAPACITY = 1 << 29;

    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);

    final long[] slots;
    final int mask;
    /** Entries holding a key, retired ones included (writer only). */
    private int used;
    /** Entries whose value is {@link #RETIRED} (writer only). */
    private int retired;

    private SafepointTable(int capacity) {
        slots = new long[capacity * 2];
        mask = capacity - 1;
    }

    /** An empty table in which {@code safepoints} entries fill at most a quarter (and at least 8 slots). */
    static SafepointTable sizedFor(long safepoints) {
        long wanted = Math.max(8, Math.min(MAX_CAPACITY, safepoints * 4));
        return new SafepointTable((int) Math.min(MAX_CAPACITY, Long.highestOneBit(wanted - 1) << 1));
    }

    int capacity() {
        return mask + 1;
    }

    /** Entries with a key, retired ones included. */
    int used() {
        return used;
    }

    /** Entries of registered objects. */
    int live() {
        return used - retired;
    }

    /**
     * Whether {@code more} new keys keep the table at most half full, which keeps every probe
     * short and guarantees it reaches an empty slot.
     */
    boolean fits(long more) {
        return used + more <= capacity() / 2;
    }

    /**
     * Puts {@code value} under {@code key}: a new entry, or the value of the entry that has the key
     * (a retired one, when code is registered again at a removed object's return address).
     */
    void put(long key, long value) {
        int slot = hash(key) & mask;
        while (true) {
            long k = slots[2 * slot];
            if (k == 0) {
                LONGS.setVolatile(slots, 2 * slot + 1, value);
                LONGS.setRelease(slots, 2 * slot, key);
                used++;
                return;
            }
            if (k == key) {
                // Taking an entry over keeps probes from lengthening with every reuse of an address.
                if (slots[2 * slot + 1] == RETIRED) {
                    retired--;
                }
                LONGS.setVolatile(slots, 2 * slot + 1, value);
                return;
            }
            slot = (slot + 1) & mask;
        }
    }

    /** The value under {@code key}, or {@link #RETIRED} when it has none or a retired one. Writer only. */
    long liveValue(long key) {
        int slot = hash(key) & mask;
        while (true) {
            long k = slots[2 * slot];
            if (k == 0) {
                return RETIRED;
            }
            if (k == key) {
                return slots[2 * slot + 1];
            }
            slot = (slot + 1) & mask;
        }
    }

    /** Retires the entry of {@code key}, if there is one. */
    void retire(long key) {
        int slot = hash(key) & mask;
        while (true) {
            long k = slots[2 * slot];
            if (k == 0) {
                return;
            }
            if (k == key) {
                if (slots[2 * slot + 1] != RETIRED) {
                    LONGS.setVolatile(slots, 2 * slot + 1, RETIRED);
                    retired++;
                }
                return;
            }
            slot = (slot + 1) & mask;
        }
    }

    /**
     * Copies the live entries of slots {@code [from, from + count)} (clamped to the table) into
     * {@code successor}.
     *
     * @return the slot after the last one copied
     */
    int copyInto(SafepointTable successor, int from, int count) {
        int end = (int) Math.min(capacity(), (long) from + count);
        long[] s = slots;
        for (int slot = from; slot < end; slot++) {
            long key = s[2 * slot];
            long value = s[2 * slot + 1];
            if (key != 0 && value != RETIRED) {
                successor.put(key, value);
            }
        }
        return end;
    }

    /**
     * Fills {@code frame} with the published safepoint at {@code returnAddress}. Wait-free: the
     * table is at most half full, so the probe reaches an empty slot; no step waits for a writer,
     * and nothing is retried.
     *
     * @param before the objects' {@link ObjectSlots#published} array, loaded before this table
     *     was loaded from the registry (ordering 2)
     */
    boolean lookup(long returnAddress, Frame frame, ObjectTable[] before, ObjectSlots objects) {
        long[] s = slots;
        int m = mask;
        int slot = hash(returnAddress) & m;
        while (true) {
            long k = (long) LONGS.getAcquire(s, 2 * slot);
            if (k == 0) {
                return false;
            }
            if (k == returnAddress) {
                // A key has one entry: retired means its object was unregistered.
                long value = (long) LONGS.getAcquire(s, 2 * slot + 1);
                if (value == RETIRED) {
                    return false;
                }
                int object = objectSlot(value);
                ObjectTable[] after = objects.published();
                if (after == before) {
                    // No object was published or unpublished since before: the value is its slot's own (ordering 2).
                    if (object < before.length && before[object] != null) {
                        frame.setSafepoint(before, value);
                        return true;
                    }
                    return false;
                }
                return confirm(returnAddress, value, frame, after);
            }
            slot = (slot + 1) & m;
        }
    }

    /**
     * A lookup during which objects were published or unpublished: the value may name a slot
     * that has changed hands, so the answer is the object in its slot now, if that object has
     * the value's safepoint at the return address (ordering 3).
     */
    private static boolean confirm(long returnAddress, long value, Frame frame, ObjectTable[] published) {
        int object = objectSlot(value);
        int index = safepointIndex(value);
        ObjectTable t = object < published.length ? published[object] : null;
        if (t == null || index >= t.spAddress.length || t.spAddress[index] != returnAddress) {
            return false;
        }
        frame.setSafepoint(published, value(object, index, t.fnFrameSize[t.spFunction[index]]));
        return true;
    }

    // The entry codec, the only code that knows the 24/24/16-bit layout of a value.

    /** The value of an entry for safepoint {@code index} of the object in {@code objectSlot}. */
    static long value(int objectSlot, int index, long frameSize) {
        return (long) objectSlot << 40 | (long) index << 16 | packFrameSize(frameSize);
    }

    /** A value that names object {@code object} and {@link #NO_SAFEPOINT}, for a {@link Frame} that found code but no safepoint. */
    static long valueOfObject(int object) {
        return (long) object << 40 | (long) NO_SAFEPOINT << 16 | FRAME_SIZE_IN_TABLE;
    }

    /** {@code frameSize} as a value holds it: itself, or {@link #FRAME_SIZE_IN_TABLE} when it does not fit. */
    static int packFrameSize(long frameSize) {
        return frameSize >= 0 && frameSize < FRAME_SIZE_IN_TABLE ? (int) frameSize : FRAME_SIZE_IN_TABLE;
    }

    /** The object slot of a value that is not {@link #RETIRED}. */
    static int objectSlot(long value) {
        return (int) (value >>> 40);
    }

    /** The safepoint index of a value that is not {@link #RETIRED}. */
    static int safepointIndex(long value) {
        return (int) (value >>> 16) & 0xFF_FFFF;
    }

    /** The frame size of a value that is not {@link #RETIRED}, or {@link #FRAME_SIZE_IN_TABLE}. */
    static int packedFrameSize(long value) {
        return (int) value & 0xFFFF;
    }

    static int hash(long address) {
        long h = address * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 32));
    }
}
