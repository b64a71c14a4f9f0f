package dev.safepointkit.patch;

import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.events.internal.Libc;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Every write into loaded code goes through here: checked against the bytes expected, recorded in
 * the log, with the code pages writable only for the write.
 *
 * <p>A write while threads run is one naturally aligned 4- or 8-byte store that covers every byte
 * that changes: a thread fetching the instruction sees it whole, old or new. The pages are
 * read-write-execute only for that store; switching them back to read-execute shoots down the
 * other CPUs' TLB entries, which interrupts and so serializes them. Any other write is only allowed
 * while every mutator is stopped.
 *
 * <p>Only executable sections of objects loaded now may be written: the host's listener removes an
 * object under the same lock before it is unmapped, so a write never reaches freed memory. One lock
 * for the whole process, so two windows never overlap on a page.
 */
final class CodeWriter {
    private static final Object LOCK = new Object();
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;

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

    void objectFreeing(LoadedObject object) {
        synchronized (LOCK) {
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
            return MemorySegment.ofAddress(address).reinterpret(length).toArray(ValueLayout.JAVA_BYTE);
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
        synchronized (LOCK) {
            int n = expected.length;
            if (!liveCode(address, n)) {
                throw new PatchException(String.format("%s at 0x%x: not in the code of a loaded object", what, address));
            }
            MemorySegment site = MemorySegment.ofAddress(address).reinterpret(n);
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
            long word = 0;
            int width = 0;
            if (whileRunning) {
                long lo = address + first;
                long hi = address + last;
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
            }
            long page = Libc.pageSize();
            long from = Math.floorDiv(Math.min(address, width == 0 ? address : word), page) * page;
            long to = Math.floorDiv(Math.max(address + n, word + width) + page - 1, page) * page;
            MemorySegment pages = MemorySegment.ofAddress(from).reinterpret(to - from);
            Libc.mprotect(pages, Libc.PROT_READ | Libc.PROT_WRITE | Libc.PROT_EXEC);
            try {
                if (width == 0) {
                    MemorySegment.copy(MemorySegment.ofArray(replacement), 0, site, 0, n);
                } else {
                    // The whole aligned word, new bytes inside the patch, current bytes around it.
                    MemorySegment w = MemorySegment.ofAddress(word).reinterpret(width);
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
                }
            } finally {
                Libc.mprotect(pages, Libc.PROT_READ | Libc.PROT_EXEC);
            }
            return record(address, expected, replacement, whileRunning, what);
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
