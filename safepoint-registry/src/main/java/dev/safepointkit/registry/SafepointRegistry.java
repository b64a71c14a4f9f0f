package dev.safepointkit.registry;

import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.List;

/**
 * Safepoints of registered JIT code, keyed by return address, for stack walkers running while
 * JIT threads register and unregister code.
 *
 * <p>State: an immutable snapshot of the registered objects sorted by code address, each with its
 * decoded {@link ObjectTable}, which {@link #locate} loads once and searches; a table from return
 * address to safepoint, which the writer fills in place; and the array of published objects by
 * slot ({@link ObjectSlots}). A {@link #lookup} loads the published objects' array, then the
 * table, probes, and loads the array again ({@link SafepointTable}'s ordering 2 says why that is
 * enough). Writers publish a new snapshot with one store.
 *
 * <h2>Assumptions and guarantees</h2>
 * Assumptions: writers ({@link #register}, {@link #unregister}) may run on any threads; readers
 * ({@link #lookup}, {@link #locate}) on any threads, each with a {@link Frame} of its own.
 * <ol>
 *   <li><b>Publication.</b> Once {@code register} returns, every lookup that starts afterwards, on
 *       any thread, finds every safepoint of the object, with all its decoded fields.</li>
 *   <li><b>Removal.</b> Once {@code unregister} returns, no lookup that starts afterwards finds any
 *       safepoint of the object.</li>
 *   <li><b>All or nothing.</b> A lookup sees an object either entirely (every safepoint, every
 *       field as decoded) or not at all: never a half-registered or half-removed object.</li>
 *   <li><b>Disjoint writers.</b> Registrations of objects with disjoint code from several threads
 *       all take effect: none is lost.</li>
 *   <li><b>Stable results.</b> What a lookup returned stays valid, unchanged, as long as the
 *       reader's Frame refers to it, even after the object is unregistered.</li>
 *   <li><b>No overlap.</b> Registering code that overlaps registered code, or a safepoint whose
 *       return address a registered object's safepoint has (at the code end of one object and
 *       the start of the next), is refused with an exception and changes nothing.</li>
 * </ol>
 * Progress: lookups are wait-free (acquire loads of the published objects' array and of the
 * table, a probe of a table at most half full, which ends at the key or an empty slot, and the
 * array loaded again: no retry) and allocate nothing; a lookup stores no reference into the
 * caller's Frame unless a writer published since that Frame's last lookup. Writers are serialized
 * by a lock and never block readers. A registration or unregistration costs its own safepoints
 * (decoded outside the lock, then one put or retire each), O(objects) copies of the object index
 * and of the published objects' array, and, while the table is
 * being replaced by a bigger one or one without retired entries, the copy of 8 table slots per
 * safepoint into the replacement ({@link SafepointTable}): no call pays for a whole rebuild,
 * except a registration of one object larger than the table's remaining eighth. Object slots and
 * retired entries are reused, so loading and unloading code at the same addresses never grows
 * the table. {@link #locate} is wait-free too: a binary search over the objects, then the lookup.
 *
 * <p>Memory reclamation: decoded tables are ordinary Java arrays. An unregistered object is only
 * unpublished (a new published-objects array without it), its entries retired, its slot freed and
 * the object dropped from the snapshot, and a replacement table replaces the old one by a
 * reference store; the JVM's garbage collector frees them once no table, snapshot, array or
 * Frame a reader still holds refers to them (a Frame holds the array its object was found in). That is what makes guarantee 5 hold without epochs or
 * hazard pointers. (The code memory itself belongs to the JIT host, which must not unmap code
 * that is still on a stack being walked.)
 *
 * <p>Each guarantee has a jcstress test in the stress module whose forbidden outcome is its
 * violation.
 */
public final class SafepointRegistry {
    private static final VarHandle SNAPSHOT;
    private static final VarHandle TABLE;

    static {
        try {
            SNAPSHOT = MethodHandles.lookup().findVarHandle(SafepointRegistry.class, "snapshot", Snapshot.class);
            TABLE = MethodHandles.lookup().findVarHandle(SafepointRegistry.class, "table", SafepointTable.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The objects by code range, for locate and overlap checks. getAcquire; setRelease under {@link #writeLock}. */
    @SuppressWarnings("unused")
    private Snapshot snapshot = Snapshot.EMPTY;
    /** Return address to safepoint, for lookup. getAcquire; setRelease under {@link #writeLock}. */
    @SuppressWarnings("unused")
    private SafepointTable table = SafepointTable.sizedFor(0);
    /** The objects the table's values name by slot. Its writes under {@link #writeLock}. */
    private final ObjectSlots objects = new ObjectSlots();
    /**
     * The table being filled to replace {@link #table}, or null; writer only, under
     * {@link #writeLock}. While there is one, every entry put into or retired in the table is also
     * put into or retired in it, and each writer call copies a chunk of the table's slots into it.
     */
    private SafepointTable successor;
    /** Slots of {@link #table} below this are copied into {@link #successor}; under {@link #writeLock}. */
    private int copied;
    /** Table slots copied into successors so far, for tests; under {@link #writeLock}. */
    private long slotsCopied;
    private final Object writeLock = new Object();
    private final RecordClassifier classifier;

    /**
     * An empty registry that tells statepoints from other records by their layout
     * ({@link RecordClassifier#BY_LAYOUT}).
     */
    public SafepointRegistry() {
        this(RecordClassifier.BY_LAYOUT);
    }

    /**
     * An empty registry.
     *
     * @param classifier tells statepoint records from stackmap and patchpoint records; called on
     *     registering threads, outside the registry's lock
     */
    public SafepointRegistry(RecordClassifier classifier) {
        this.classifier = classifier;
    }

    /** The registered objects, sorted by code start; immutable. */
    private record Snapshot(long[] starts, long[] ends, long[] keys, ObjectTable[] tables, long safepoints) {
        static final Snapshot EMPTY = new Snapshot(new long[0], new long[0], new long[0], new ObjectTable[0], 0);

        /** The index of the object registered under {@code key}, or -1: a scan of a primitive array. */
        int indexOfKey(long key) {
            long[] k = keys;
            for (int i = 0; i < k.length; i++) {
                if (k[i] == key) {
                    return i;
                }
            }
            return -1;
        }

        /** Index of the object whose code holds {@code pc} (a return address may equal its end), or -1. */
        int find(long pc) {
            int last = Sorted.lastAtOrBefore(starts, starts.length, pc);
            // The last object starting at or before pc; a return address may equal its end.
            return last >= 0 && pc <= ends[last] ? last : -1;
        }
    }

    /**
     * Registers an object's code and its relocated stack maps (function addresses absolute).
     *
     * <p>Any thread; decoding runs on the caller's thread without the lock, and only the
     * publication is serialized with other writers. Lookups are never blocked.
     *
     * @param key the object's key, unique among registered objects
     * @param name the object's name, for error messages and {@link Frame#objectName()}
     * @param codeStart the absolute address of the object's first code byte
     * @param codeSize the size in bytes of its code range, greater than 0; a return address may
     *     equal {@code codeStart + codeSize} (a call at the very end of the code)
     * @param stackMaps its stack maps, or null for code without safepoints (still found by {@link #locate})
     * @param functions its functions with sizes (from its symbols); functions known only from the
     *     stack maps are added with size 0
     * @throws RegistryException if the code range is empty, overlaps registered code, or the key
     *     is taken, or a record is malformed, outside the code or shares its return address with
     *     another of its own or of a registered object; nothing changes then
     */
    public void register(long key, String name, long codeStart, long codeSize, StackMapSection stackMaps,
            List<FunctionSpan> functions) throws RegistryException {
        register(key, name, codeStart, codeSize, stackMaps, functions, null);
    }

    /**
     * Registers an object as {@link #register(long, String, long, long, StackMapSection, List)}
     * does, and plans each safepoint's unwind from {@code ehFrame} ({@link Frame#unwindPlan()}).
     *
     * @param key the object's key, unique among registered objects
     * @param name the object's name, for error messages and {@link Frame#objectName()}
     * @param codeStart the absolute address of the object's first code byte
     * @param codeSize the size in bytes of its code range, greater than 0
     * @param stackMaps its stack maps, or null for code without safepoints
     * @param functions its functions with sizes (from its symbols)
     * @param ehFrame its relocated {@code .eh_frame}, or null: its safepoints then have no plan,
     *     and a walker can step over their frames only by a static frame size
     * @throws RegistryException as the other overload, and when the CFI of a safepoint cannot be
     *     planned (no FDE, an unsupported rule, a frame size the CFI contradicts): the message
     *     names the function and the PC; nothing changes then
     */
    public void register(long key, String name, long codeStart, long codeSize, StackMapSection stackMaps,
            List<FunctionSpan> functions, EhFrame ehFrame) throws RegistryException {
        if (codeSize <= 0) {
            throw new RegistryException(name + ": empty code range");
        }
        // Decoding happens outside the lock: writers hold it only to publish.
        ObjectTable table = ObjectTable.decode(key, name, codeStart, codeSize, stackMaps, functions, classifier, ehFrame);
        synchronized (writeLock) {
            Snapshot s = (Snapshot) SNAPSHOT.getAcquire(this);
            int taken = s.indexOfKey(key);
            if (taken >= 0) {
                throw new RegistryException(name + ": key " + key + " is already registered (" + s.tables()[taken].name + ")");
            }
            int at = Sorted.insertionPoint(s.starts(), codeStart);
            if (at > 0 && s.ends()[at - 1] > codeStart) {
                throw overlap(name, codeStart, table.codeEnd, s.tables()[at - 1]);
            }
            if (at < s.starts().length && s.starts()[at] < table.codeEnd) {
                throw overlap(name, codeStart, table.codeEnd, s.tables()[at]);
            }
            refuseSharedBoundary(name, table);
            Snapshot next = new Snapshot(insert(s.starts(), at, codeStart), insert(s.ends(), at, table.codeEnd),
                    insert(s.keys(), at, key), insert(s.tables(), at, table), s.safepoints() + table.safepointCount());
            table.slot = objects.assign(table);
            int n = table.safepointCount();
            SafepointTable current = roomFor(n);
            // Readers skip the new entries until the object is published in its slot.
            for (int i = 0; i < n; i++) {
                long value = SafepointTable.value(table.slot, i, table.fnFrameSize[table.spFunction[i]]);
                current.put(table.spAddress[i], value);
                if (successor != null) {
                    successor.put(table.spAddress[i], value);
                }
            }
            objects.publish(table.slot, table);
            step(n);
            SNAPSHOT.setRelease(this, next);
        }
    }

    /**
     * Refuses a safepoint at the new object's code start or end that a registered object already
     * has: a return address may equal an object's code end, where the next object's code may
     * begin, and two objects cannot share the one table entry of an address. Under {@link #writeLock}.
     */
    private void refuseSharedBoundary(String name, ObjectTable table) throws RegistryException {
        SafepointTable current = (SafepointTable) TABLE.getAcquire(this);
        for (long address : table.spAddress) {
            if (address != table.codeStart && address != table.codeEnd) {
                continue;
            }
            long value = current.liveValue(address);
            if (value != SafepointTable.RETIRED) {
                ObjectTable[] published = objects.published();
                int slot = SafepointTable.objectSlot(value);
                ObjectTable other = slot < published.length ? published[slot] : null;
                throw new RegistryException(name + ": its safepoint at 0x" + Long.toHexString(address)
                        + " has the return address of a safepoint of registered object "
                        + (other != null ? other.name + " (key " + other.key + ")" : "in slot " + slot)
                        + ", whose code ends or begins there");
            }
        }
    }

    private static RegistryException overlap(String name, long start, long end, ObjectTable other) {
        return new RegistryException(name + ": code [0x" + Long.toHexString(start) + ", 0x" + Long.toHexString(end)
                + ") overlaps registered object " + other.name + " (key " + other.key + ") at [0x"
                + Long.toHexString(other.codeStart) + ", 0x" + Long.toHexString(other.codeEnd) + ")");
    }

    /**
     * The table to put {@code n} new entries into, with room for them. Normally the current table;
     * when it lacks room, the successor being filled is finished now, and if even that lacks room
     * (an object larger than the growth planned for), a table sized for it is filled at once.
     * Under {@link #writeLock}.
     */
    private SafepointTable roomFor(int n) {
        SafepointTable current = (SafepointTable) TABLE.getAcquire(this);
        if (current.fits(n) && (successor == null || successor.fits(n))) {
            return current;
        }
        if (successor != null) {
            finishSuccessor(current);
            current = (SafepointTable) TABLE.getAcquire(this);
        }
        if (!current.fits(n)) {
            startSuccessor(current, n);
            finishSuccessor(current);
            current = (SafepointTable) TABLE.getAcquire(this);
        }
        return current;
    }

    /**
     * After a writer call that put or retired {@code n} entries: copies a chunk of the table into
     * the successor, publishing it when done, or starts a successor when the table is more than
     * 3/8 full (retired entries included). The chunk, 8 slots per entry, sweeps the whole table
     * before the puts that the 1/8 left until half full allow. Under {@link #writeLock}.
     */
    private void step(int n) {
        SafepointTable current = (SafepointTable) TABLE.getAcquire(this);
        if (successor != null) {
            copy(current, 8 * (n + 32));
            if (copied == current.capacity()) {
                publishSuccessor();
            }
        } else if (current.used() > current.capacity() / 8 * 3) {
            startSuccessor(current, 0);
        }
    }

    /**
     * A successor sized for the live entries plus {@code n}, with room for the puts it takes while
     * being filled: at least half the table's capacity (4 times the live entries, or half the
     * table, whichever is more, keeps it at most half full after 1/8 of the table's capacity more).
     */
    private void startSuccessor(SafepointTable current, int n) {
        long live = current.live() + (long) n;
        SafepointTable next = SafepointTable.sizedFor(Math.max(live, current.capacity() / 8));
        successor = next;
        copied = 0;
    }

    private void finishSuccessor(SafepointTable current) {
        copy(current, current.capacity());
        publishSuccessor();
    }

    private void copy(SafepointTable current, int count) {
        int end = current.copyInto(successor, copied, count);
        slotsCopied += end - copied;
        copied = end;
    }

    private void publishSuccessor() {
        TABLE.setRelease(this, successor);
        successor = null;
        copied = 0;
    }

    /**
     * Unregisters the object registered under {@code key}. Any thread; serialized with other
     * writers, never blocks lookups. Frames that already point into the object stay valid.
     *
     * @param key the key the object was registered under
     * @return whether there was such an object
     */
    public boolean unregister(long key) {
        synchronized (writeLock) {
            Snapshot s = (Snapshot) SNAPSHOT.getAcquire(this);
            int i = s.indexOfKey(key);
            if (i < 0) {
                return false;
            }
            // Unpublished first: from here on no lookup returns its safepoints.
            ObjectTable gone = s.tables()[i];
            objects.unpublish(gone.slot);
            Snapshot next = new Snapshot(remove(s.starts(), i), remove(s.ends(), i), remove(s.keys(), i),
                    remove(s.tables(), i), s.safepoints() - gone.safepointCount());
            SafepointTable current = (SafepointTable) TABLE.getAcquire(this);
            for (long address : gone.spAddress) {
                current.retire(address);
                if (successor != null) {
                    successor.retire(address);
                }
            }
            // No entry names the slot any more: it may go to the next object (SafepointTable, ordering 2).
            objects.release(gone.slot);
            gone.slot = -1;
            step(gone.safepointCount());
            SNAPSHOT.setRelease(this, next);
            return true;
        }
    }

    /**
     * Finds the safepoint whose return address is {@code returnAddress} and points {@code frame}
     * at it. Wait-free, allocation-free.
     *
     * @param returnAddress an absolute return address, as found on a stack
     * @param frame the calling thread's own cursor, overwritten on a hit
     * @return false when no registered safepoint has that return address (frame unchanged)
     */
    public boolean lookup(long returnAddress, Frame frame) {
        // The objects before the table: a table loaded after them is at least as new (SafepointTable, ordering 4).
        ObjectTable[] published = objects.published();
        return ((SafepointTable) TABLE.getAcquire(this)).lookup(returnAddress, frame, published, objects);
    }

    /**
     * Tells whether {@code pc} is inside registered code, and if so points {@code frame} at its
     * object and function ({@link Frame#hasFunction()} false when no function covers it), and at
     * the safepoint when pc is one's return address. Wait-free, allocation-free.
     *
     * @param pc an absolute code address; a return address may equal the end of an object's code
     * @param frame the calling thread's own cursor, overwritten when this returns true
     * @return whether {@code pc} is inside registered code (frame unchanged when not)
     */
    public boolean locate(long pc, Frame frame) {
        Snapshot s = (Snapshot) SNAPSHOT.getAcquire(this);
        int object = s.find(pc);
        if (object < 0) {
            return false;
        }
        ObjectTable t = s.tables()[object];
        if (!(lookup(pc, frame) && frame.objectKey() == t.key)) {
            frame.setCode(s.tables(), object, t.functionAt(pc));
        }
        return true;
    }

    /** The table lookups read now, for tests in this package. */
    SafepointTable tableForTest() {
        return (SafepointTable) TABLE.getAcquire(this);
    }

    /** The published objects by slot, for tests in this package. */
    ObjectSlots objectsForTest() {
        return objects;
    }

    /** Whether a replacement table is being filled, for tests in this package (writer's view). */
    boolean replacingForTest() {
        synchronized (writeLock) {
            return successor != null;
        }
    }

    /** Table slots copied into replacements so far, for tests in this package. */
    long slotsCopiedForTest() {
        synchronized (writeLock) {
            return slotsCopied;
        }
    }

    /** The registered objects' tables, for tests in this package: a snapshot, any thread. */
    ObjectTable[] tablesForTest() {
        return ((Snapshot) SNAPSHOT.getAcquire(this)).tables().clone();
    }

    /**
     * Registered objects now.
     *
     * @return the count in the latest snapshot; may be stale by the time it is used
     */
    public int objectCount() {
        return ((Snapshot) SNAPSHOT.getAcquire(this)).tables().length;
    }

    /**
     * Registered safepoints now.
     *
     * @return the sum over the latest snapshot's objects; may be stale by the time it is used
     */
    public long safepointCount() {
        return ((Snapshot) SNAPSHOT.getAcquire(this)).safepoints();
    }

    private static long[] insert(long[] a, int at, long v) {
        long[] b = new long[a.length + 1];
        System.arraycopy(a, 0, b, 0, at);
        b[at] = v;
        System.arraycopy(a, at, b, at + 1, a.length - at);
        return b;
    }

    private static ObjectTable[] insert(ObjectTable[] a, int at, ObjectTable v) {
        ObjectTable[] b = new ObjectTable[a.length + 1];
        System.arraycopy(a, 0, b, 0, at);
        b[at] = v;
        System.arraycopy(a, at, b, at + 1, a.length - at);
        return b;
    }

    private static long[] remove(long[] a, int at) {
        long[] b = new long[a.length - 1];
        System.arraycopy(a, 0, b, 0, at);
        System.arraycopy(a, at + 1, b, at, a.length - at - 1);
        return b;
    }

    private static ObjectTable[] remove(ObjectTable[] a, int at) {
        ObjectTable[] b = new ObjectTable[a.length - 1];
        System.arraycopy(a, 0, b, 0, at);
        System.arraycopy(a, at + 1, b, at, a.length - at - 1);
        return b;
    }
}
