package dev.safepointkit.patch;

import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.host.CodeAliases;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Every write into loaded code goes through here: checked against the bytes expected, recorded in
 * the log, and stored through the code's writable alias ({@link CodeAliases}). The code itself is
 * mapped read + execute and stays so: no page is made writable, no mprotect is called.
 *
 * <p>A write while threads run is one naturally aligned 4- or 8-byte store that covers every byte
 * that changes: a thread fetching the instruction sees it whole, old or new. The alias lies at a
 * page-aligned distance from the code, so a word aligned in the alias is aligned in the code.
 * Then {@link CoreSync#serializeAllThreads} makes every other thread serialize before it runs user
 * code again, Intel's condition for running cross-modified code. Any other write is only allowed
 * while every mutator is stopped; it needs no barrier of its own, the stop issues one before the
 * mutators run again ({@link #serializeAfterStop}).
 *
 * <p>Only executable sections of objects loaded now may be written: the host's listener removes an
 * object under the same lock before it is unmapped, and every alias segment is scoped to its
 * object, so a write to code being unloaded is refused, never a use after free. One lock for the
 * whole process: two patchers of one host never interleave their check and store.
 */
final class CodeWriter {
    private static final Object LOCK = new Object();
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;

    private final CodeAliases aliases;
    /** Writes made at a stop, or batched, since the last barrier; guarded by LOCK. */
    private int unserialized;

    CodeWriter(CodeAliases aliases) {
        this.aliases = aliases;
    }

    /** Executable ranges per loaded object: {start, end} pairs. */
    private final Map<Long, long[][]> code = new HashMap<>();
    /** The newest {@link #LOG_CAPACITY} patches; {@link #patches} counts all. */
    static final int LOG_CAPACITY = 1 << 16;
    private final java.util.ArrayDeque<Patch> log = new java.util.ArrayDeque<>();
    private long patches;

    void objectLoaded(LoadedObject object) {
        List<long[]> ranges = new ArrayList<>();
        for (LoadedSection s : object.sections()) {
            if (s.executable()) {
                ranges.add(new long[] {s.address(), s.address() + s.size()});
            }
        }
        synchronized (LOCK) {
            code.put(object.key(), ranges.toArray(long[][]::new));
        }
    }

    /**
     * Before {@code object}'s code is unmapped: a barrier still owed is paid first, so no thread
     * can still be running old bytes that lead into code about to go (this object's or another's).
     */
    void objectFreeing(LoadedObject object) {
        synchronized (LOCK) {
            serializePendingLocked();
            code.remove(object.key());
        }
    }

    /** Whether [address, address + length) lies in the code of a loaded object. */
    boolean isLiveCode(long address, int length) {
        synchronized (LOCK) {
            return liveCode(address, length);
        }
    }

    private boolean liveCode(long address, int length) {
        for (long[][] ranges : code.values()) {
            for (long[] r : ranges) {
                if (address >= r[0] && address + length <= r[1]) {
                    return true;
                }
            }
        }
        return false;
    }

    /** The bytes at [address, address + length) of loaded code; fails if it is not loaded code. */
    byte[] read(long address, int length) throws PatchException {
        synchronized (LOCK) {
            if (!liveCode(address, length)) {
                throw new PatchException(String.format("0x%x: not in the code of a loaded object", address));
            }
            try {
                return alias(address, length, "reading").toArray(ValueLayout.JAVA_BYTE);
            } catch (IllegalStateException unloaded) {
                throw new PatchException(String.format("0x%x: its object is being unloaded", address), unloaded);
            }
        }
    }

    /** The writable alias of live code; the caller has checked {@link #liveCode}. Holds LOCK. */
    private MemorySegment alias(long address, long length, String what) throws PatchException {
        return aliases.writable(address, length).orElseThrow(() -> new PatchException(String.format(
                "%s at 0x%x: the host has no code alias there (its object is being unloaded)", what, address)));
    }

    /**
     * After writes made while every mutator was stopped (before they run again), or after a batch
     * of {@link #writeUnlessUnloaded} stores (before the patcher returns): one barrier for them
     * all, however many writes there were.
     */
    void serializeAfterStop() {
        serializePending();
    }

    /** The barrier {@link #serializeAfterStop} describes, if any write is waiting for one. */
    void serializePending() {
        synchronized (LOCK) {
            serializePendingLocked();
        }
    }

    /** {@return whether a write made while threads run still waits for its barrier} */
    boolean barrierOwed() {
        synchronized (LOCK) {
            return unserialized > 0;
        }
    }

    private void serializePendingLocked() {
        if (unserialized > 0) {
            CoreSync.serializeAllThreads();
            unserialized = 0;
        }
    }

    /**
     * Replaces {@code expected} at {@code address} with {@code replacement}.
     *
     * @param whileRunning make the change with one atomic store, as threads may run the code; it
     *     fails if the changed bytes do not fit in one naturally aligned 4- or 8-byte word. When
     *     false, the caller has stopped every mutator.
     * @throws PatchException if the bytes there are not {@code expected} or it is not loaded
     *     code; nothing is written
     */
    Patch write(long address, byte[] expected, byte[] replacement, boolean whileRunning, String what)
            throws PatchException {
        if (expected.length != replacement.length) {
            throw new IllegalArgumentException(expected.length + " expected bytes, " + replacement.length + " new");
        }
        return checkedWrite(address, expected, replacement, whileRunning, true, what);
    }

    private Patch checkedWrite(long address, byte[] expected, byte[] replacement, boolean whileRunning, boolean barrierNow,
            String what) throws PatchException {
        synchronized (LOCK) {
            int n = expected.length;
            if (!liveCode(address, n)) {
                throw new PatchException(String.format("%s at 0x%x: not in the code of a loaded object", what, address));
            }
            try {
                return store(address, expected, replacement, whileRunning, barrierNow, what);
            } catch (IllegalStateException unloaded) {
                // The object's scope closed under us: its unload won, and nothing was written.
                throw new PatchException(String.format("%s at 0x%x: its object is being unloaded; nothing written", what,
                        address), unloaded);
            }
        }
    }

    /** The check and the store, through the alias. Holds LOCK. */
    private Patch store(long address, byte[] expected, byte[] replacement, boolean whileRunning, boolean barrierNow,
            String what) throws PatchException {
        int n = expected.length;
        MemorySegment site = alias(address, n, what);
        byte[] found = site.toArray(ValueLayout.JAVA_BYTE);
        if (!Arrays.equals(found, expected)) {
            throw new PatchException(String.format("%s at 0x%x: expected [%s], found [%s]; nothing written", what,
                    address, X86Code.hex(expected), X86Code.hex(found)));
        }
        int first = 0;
        while (first < n && expected[first] == replacement[first]) {
            first++;
        }
        if (first == n) {
            return record(address, expected, replacement, whileRunning, what);
        }
        int last = n - 1;
        while (expected[last] == replacement[last]) {
            last--;
        }
        if (!whileRunning) {
            MemorySegment.copy(MemorySegment.ofArray(replacement), 0, site, 0, n);
            unserialized++;
            return record(address, expected, replacement, false, what);
        }
        long lo = address + first;
        long hi = address + last;
        long word = 0;
        int width = 0;
        for (int w : new int[] {4, 8}) {
            if (Math.floorDiv(lo, w) == Math.floorDiv(hi, w)) {
                word = Math.floorDiv(lo, w) * w;
                width = w;
                break;
            }
        }
        if (width == 0) {
            throw new PatchException(String.format("%s at 0x%x: the bytes that change, [0x%x, 0x%x], do not fit"
                    + " one aligned 4- or 8-byte word; such a patch needs a safepoint", what, address, lo, hi));
        }
        // The whole aligned word, new bytes inside the patch, current bytes around it. The word may
        // reach past the patch but not past the object's code: code sections are page-grouped.
        MemorySegment w = alias(word, width, what);
        byte[] bytes = w.toArray(ValueLayout.JAVA_BYTE);
        for (int i = 0; i < width; i++) {
            long at = word + i - address;
            if (at >= 0 && at < n) {
                bytes[i] = replacement[(int) at];
            }
        }
        MemorySegment value = MemorySegment.ofArray(bytes);
        if (width == 4) {
            INT.varHandle().setVolatile(w, 0L, value.get(ValueLayout.JAVA_INT_UNALIGNED, 0));
        } else {
            LONG.varHandle().setVolatile(w, 0L, value.get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
        }
        if (barrierNow) {
            CoreSync.serializeAllThreads();
        } else {
            unserialized++;
        }
        return record(address, expected, replacement, true, what);
    }

    /**
     * As {@link #write} with {@code whileRunning}, except that code no longer loaded (its object
     * is being unloaded) is left alone (returns null then), and the barrier is owed, not made: it
     * is paid by {@link #serializePending}, at the end of the next stop, and before any code is
     * unmapped ({@link #objectFreeing}; the patcher also pays before it frees its stubs). That is
     * as safe as a barrier per store: each store is one aligned word that a racing thread sees
     * old or new, both whole instructions that lead to code that stays mapped until the barrier
     * has made every thread serialize (docs/patching.md, "The owed barrier").
     */
    Patch writeUnlessUnloaded(long address, byte[] expected, byte[] replacement, String what) throws PatchException {
        synchronized (LOCK) {
            if (!liveCode(address, expected.length)) {
                return null;
            }
            return checkedWrite(address, expected, replacement, true, false, what);
        }
    }

    private Patch record(long address, byte[] before, byte[] after, boolean whileRunning, String what) {
        Patch p = new Patch(address, before, after, what, whileRunning, System.nanoTime());
        if (log.size() == LOG_CAPACITY) {
            log.removeFirst();
        }
        log.addLast(p);
        patches++;
        return p;
    }

    List<Patch> log() {
        synchronized (LOCK) {
            return List.copyOf(log);
        }
    }

    long patches() {
        synchronized (LOCK) {
            return patches;
        }
    }
}
