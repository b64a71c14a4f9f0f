package dev.safepointkit.registry;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * The registered objects by slot number, the number that {@link SafepointTable} values carry. A
 * slot is handed out at registration and freed at unregistration, once no table entry names it
 * any more, so the slots in use are about the objects registered: loading and unloading code in
 * a loop never runs out of them.
 *
 * <p>Memory ordering: {@link #assign} stores the object with release, and a grown array is
 * published with one release store of {@link #array} after it holds every slot of the old one;
 * {@link #get} loads the array and then the slot with acquire. A reader reaches a slot number only
 * through a table value stored after the slot was assigned, so the array it loads has that slot.
 *
 * <p>Not thread safe for writers (the registry serializes them); any number of readers.
 */
final class ObjectSlots {
    /** Slots are below this: 24 bits in a table value, the all-ones number left for {@link SafepointTable#RETIRED}. */
    static final int MAX = (1 << 24) - 1;

    private static final VarHandle ARRAY;
    private static final VarHandle ELEMENTS = MethodHandles.arrayElementVarHandle(ObjectTable[].class);

    static {
        try {
            ARRAY = MethodHandles.lookup().findVarHandle(ObjectSlots.class, "array", ObjectTable[].class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** getAcquire by readers; setRelease by the writer. */
    @SuppressWarnings("unused")
    private ObjectTable[] array = new ObjectTable[64];
    /** Freed slots, reused last freed first (writer only). */
    private int[] free = new int[16];
    private int freeCount;
    /** Slots below this have been handed out at some time (writer only). */
    private int next;

    /**
     * Gives {@code object} a slot and stores it there (release).
     *
     * @throws RegistryException when {@link #MAX} objects are registered
     */
    int assign(ObjectTable object) throws RegistryException {
        int slot;
        if (freeCount > 0) {
            slot = free[--freeCount];
        } else if (next < MAX) {
            slot = next++;
        } else {
            throw new RegistryException(object.name + ": " + MAX + " objects are registered, the most the registry holds");
        }
        ObjectTable[] a = (ObjectTable[]) ARRAY.getAcquire(this);
        if (slot >= a.length) {
            a = Arrays.copyOf(a, (int) Math.min(MAX, 2L * a.length));
            ARRAY.setRelease(this, a);
        }
        ELEMENTS.setRelease(a, slot, object);
        return slot;
    }

    /** Frees {@code slot}; the caller has retired every table entry that names it. */
    void release(int slot) {
        ELEMENTS.setRelease((ObjectTable[]) ARRAY.getAcquire(this), slot, null);
        if (freeCount == free.length) {
            free = Arrays.copyOf(free, free.length * 2);
        }
        free[freeCount++] = slot;
    }

    /** The object in {@code slot}, or null when the slot is free. Any thread; wait-free. */
    ObjectTable get(int slot) {
        return (ObjectTable) ELEMENTS.getAcquire((ObjectTable[]) ARRAY.getAcquire(this), slot);
    }
}
