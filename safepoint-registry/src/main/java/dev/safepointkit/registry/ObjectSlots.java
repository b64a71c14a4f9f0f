package dev.safepointkit.registry;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * The published objects by slot number, the number that {@link SafepointTable} values carry. A
 * slot is handed out at registration and freed at unregistration, once no table entry names it
 * any more, so the slots in use are about the objects registered: loading and unloading code in
 * a loop never runs out of them.
 *
 * <p>Readers see the slots through one array, {@link #published()}, that is never written once
 * published: the writer publishes an object by publishing a copy that holds it in its slot, and
 * unpublishes it by publishing a copy with null there. So an object is published exactly while
 * the newest array holds it, an array a reader loaded stays what it was (a {@link Frame} keeps
 * the objects of its lookup reachable through it), and two loads that return the same array
 * prove that no object was published or unpublished between them. Each publication costs a copy
 * of the array, of the order of the registered objects, as does the registry's object index.
 *
 * <p>Memory ordering: the array is filled privately and published with one release store of
 * {@link #array}; readers load it with acquire and its elements plainly.
 *
 * <p>Not thread safe for writers (the registry serializes them); any number of readers.
 */
final class ObjectSlots {
    /** Slots are below this: 24 bits in a table value, the all-ones number left for {@link SafepointTable#RETIRED}. */
    static final int MAX = (1 << 24) - 1;

    private static final VarHandle ARRAY;

    static {
        try {
            ARRAY = MethodHandles.lookup().findVarHandle(ObjectSlots.class, "array", ObjectTable[].class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The published objects by slot; getAcquire by readers, setRelease by the writer; never written once stored here. */
    @SuppressWarnings("unused")
    private ObjectTable[] array = new ObjectTable[64];
    /** Freed slots, reused last freed first (writer only). */
    private int[] free = new int[16];
    private int freeCount;
    /** Slots below this have been handed out at some time (writer only). */
    private int next;

    /**
     * Gives {@code object} a slot, unpublished: readers do not see it there until {@link #publish}.
     *
     * @throws RegistryException when {@link #MAX} objects are registered
     */
    int assign(ObjectTable object) throws RegistryException {
        if (freeCount > 0) {
            return free[--freeCount];
        }
        if (next < MAX) {
            return next++;
        }
        throw new RegistryException(object.name + ": " + MAX + " objects are registered, the most the registry holds");
    }

    /** Publishes {@code object} in its {@code slot}, assigned by {@link #assign}: one release store of a new array. */
    void publish(int slot, ObjectTable object) {
        ObjectTable[] a = (ObjectTable[]) ARRAY.getAcquire(this);
        ObjectTable[] b = Arrays.copyOf(a, slot < a.length ? a.length : (int) Math.min(MAX, Math.max(2L * a.length, slot + 1L)));
        b[slot] = object;
        ARRAY.setRelease(this, b);
    }

    /** Unpublishes the object in {@code slot}: one release store of a new array without it. */
    void unpublish(int slot) {
        ObjectTable[] a = (ObjectTable[]) ARRAY.getAcquire(this);
        ObjectTable[] b = a.clone();
        b[slot] = null;
        ARRAY.setRelease(this, b);
    }

    /** Frees {@code slot}, unpublished; the caller has retired every table entry that names it. */
    void release(int slot) {
        if (freeCount == free.length) {
            free = Arrays.copyOf(free, free.length * 2);
        }
        free[freeCount++] = slot;
    }

    /**
     * The published objects by slot (null where none is), never written after this returns it.
     * Any thread; wait-free.
     */
    ObjectTable[] published() {
        return (ObjectTable[]) ARRAY.getAcquire(this);
    }
}
