package dev.safepointkit.patch;

import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.host.CodeAliases;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

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
 * object, so a write to code being unloaded is refused, never a use after free. Each section's
 * alias is looked up once and kept with the section; a call site keeps the section it lies in
 * ({@link BranchSite}), so rewriting many sites finds none of them again.
 *
 * <p>Threading: one lock for the whole process ({@code LOCK}, innermost in the package's lock
 * order): two patchers of one host never interleave their check and store. Every method takes it;
 * the batch methods ({@link #checkBranches}, {@link #writeBranches}) take it once for all their
 * sites, so a batch is checked and written with no other writer between.
 */
final class CodeWriter {
    private static final Object LOCK = new Object();
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    private static final ValueLayout.OfInt INT_UNALIGNED = ValueLayout.JAVA_INT_UNALIGNED;
    /** A call or jmp rel32: the opcode and the rel32. */
    private static final int BRANCH_SIZE = 5;

    private final CodeAliases aliases;
    /** Writes made at a stop, or batched, since the last barrier; guarded by LOCK. */
    private int unserialized;
    /** The executable sections of loaded objects, sorted by address; replaced whole, guarded by LOCK. */
    private Section[] sections = new Section[0];
    /** The newest writes; guarded by LOCK. */
    private final PatchLog log = new PatchLog();

    CodeWriter(CodeAliases aliases) {
        this.aliases = aliases;
    }

    /** An executable section of a loaded object; its alias is found on the first access. */
    static final class Section {
        final long start;
        final long end;
        final long objectKey;
        /** Guarded by LOCK: the alias of [start, end), once found. */
        private MemorySegment alias;
        /** Guarded by LOCK: false from the moment its object starts being unloaded. */
        private boolean live = true;

        private Section(long start, long end, long objectKey) {
            this.start = start;
            this.end = end;
            this.objectKey = objectKey;
        }
    }

    /**
     * A {@code call}/{@code jmp rel32} that the writer rewrites in batches: the address of its
     * rel32, its opcode and object, and the section it lies in once the writer has found it
     * (guarded by LOCK; a section that stopped being live is never replaced by another found at
     * the same address, which could be a later object's code).
     */
    abstract static class BranchSite implements PatchLog.Text {
        final long address;
        final long objectKey;
        final byte opcode;
        private Section section;

        BranchSite(long address, long objectKey, byte opcode) {
            this.address = address;
            this.objectKey = objectKey;
            this.opcode = opcode;
        }

        /** {@return the rel32 that makes the branch lead to {@code target}} */
        final int disp(long target) {
            return (int) (target - (address + 4));
        }

        /** {@return whether the rel32 is 4-byte aligned: a rewrite is then one atomic store} */
        final boolean aligned() {
            return address % 4 == 0;
        }
    }

    void objectLoaded(LoadedObject object) {
        List<Section> added = new ArrayList<>();
        for (LoadedSection s : object.sections()) {
            if (s.executable() && s.size() > 0) {
                added.add(new Section(s.address(), s.address() + s.size(), object.key()));
            }
        }
        synchronized (LOCK) {
            for (Section s : sections) {
                if (s.objectKey == object.key()) {
                    return;   // told twice (a load racing the patcher's start): the sections are in
                }
            }
            Section[] all = Arrays.copyOf(sections, sections.length + added.size());
            for (int i = 0; i < added.size(); i++) {
                all[sections.length + i] = added.get(i);
            }
            Arrays.sort(all, Comparator.comparingLong(s -> s.start));
            sections = all;
        }
    }

    /**
     * Before {@code object}'s code is unmapped: a barrier still owed is paid first, so no thread
     * can still be running old bytes that lead into code about to go (this object's or another's).
     */
    void objectFreeing(LoadedObject object) {
        synchronized (LOCK) {
            try {
                serializePendingLocked();
            } finally {
                // The memory goes whatever the barrier did: never write to it again. (A failed
                // barrier refuses a non-forced unload earlier, in the patcher's unloadRefusal.)
                List<Section> kept = new ArrayList<>(sections.length);
                for (Section s : sections) {
                    if (s.objectKey == object.key()) {
                        s.live = false;
                    } else {
                        kept.add(s);
                    }
                }
                sections = kept.toArray(Section[]::new);
            }
        }
    }

    /** Whether [address, address + length) lies in the code of a loaded object. */
    boolean isLiveCode(long address, int length) {
        synchronized (LOCK) {
            return section(address, length) != null;
        }
    }

    /** Whether [address, address + length) is loaded code of the object {@code objectKey}, not being unloaded. */
    boolean isLiveCodeOf(long address, int length, long objectKey) {
        synchronized (LOCK) {
            Section s = section(address, length);
            return s != null && s.objectKey == objectKey && s.live;
        }
    }

    /** The live section that holds [address, address + length), or null. Holds LOCK. */
    private Section section(long address, long length) {
        Section[] all = sections;
        int lo = 0;
        int hi = all.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (all[mid].start <= address) {
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (hi < 0) {
            return null;
        }
        Section s = all[hi];
        return length >= 0 && address + length <= s.end ? s : null;
    }

    /** The bytes at [address, address + length) of loaded code; fails if it is not loaded code. */
    byte[] read(long address, int length) throws PatchException {
        synchronized (LOCK) {
            Section s = section(address, length);
            if (s == null) {
                throw new PatchException(String.format("0x%x: not in the code of a loaded object", address));
            }
            try {
                return alias(s, "reading").asSlice(address - s.start, length).toArray(ValueLayout.JAVA_BYTE);
            } catch (IllegalStateException unloaded) {
                throw new PatchException(String.format("0x%x: its object is being unloaded", address), unloaded);
            }
        }
    }

    /** The writable alias of the live section {@code s}, looked up once. Holds LOCK. */
    private MemorySegment alias(Section s, String what) throws PatchException {
        MemorySegment a = s.alias;
        if (a == null) {
            a = aliases.writable(s.start, s.end - s.start).orElseThrow(() -> new PatchException(String.format(
                    "%s at 0x%x: the host has no code alias there (its object is being unloaded)", what, s.start)));
            s.alias = a;
        }
        return a;
    }

    /**
     * After writes made while every mutator was stopped (before they run again), or after a batch
     * of {@link #writeBranches} stores (before the patcher returns): one barrier for them
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

    // ---- call sites, in batches ------------------------------------------------------------------

    /** The live section of {@code site}'s object that holds its 5 bytes, or null. Holds LOCK. */
    private Section sectionOf(BranchSite site) {
        Section s = site.section;
        if (s == null) {
            s = section(site.address - 1, BRANCH_SIZE);
            if (s == null || s.objectKey != site.objectKey) {
                return null;
            }
            site.section = s;
        }
        return s.live ? s : null;
    }

    /**
     * Checks that each of {@code sites[0, n)} holds the branch to {@code from[i]}, under one hold
     * of the lock. Writes nothing.
     *
     * @param unloading set to true for each site whose object is being unloaded (not checked);
     *     the others are set to false
     * @return the index of the first site that holds other bytes, or -1 when every live one is as expected
     */
    int checkBranches(BranchSite[] sites, long[] from, int n, boolean[] unloading) throws PatchException {
        synchronized (LOCK) {
            try {
                for (int i = 0; i < n; i++) {
                    BranchSite site = sites[i];
                    Section s = sectionOf(site);
                    unloading[i] = s == null;
                    if (s != null && !holds(alias(s, "checking a call site"), site.address - 1 - s.start, site,
                            from[i])) {
                        return i;
                    }
                }
                return -1;
            } catch (IllegalStateException closed) {
                // An alias's scope closed: its object is past objectFreeing, which we would have seen.
                throw new PatchException("a call site's object was unmapped while the writer checked it", closed);
            }
        }
    }

    /** Whether the branch at {@code offset} of {@code alias} leads to {@code target}. */
    private static boolean holds(MemorySegment alias, long offset, BranchSite site, long target) {
        return alias.get(ValueLayout.JAVA_BYTE, offset) == site.opcode
                && alias.get(INT_UNALIGNED, offset + 1) == site.disp(target);
    }

    /**
     * Rewrites each of {@code sites[0, n)} from the branch to {@code from[i]} into the branch to
     * {@code to[i]}, all or nothing: under one hold of the lock every live site is checked first,
     * then every one is written and logged. Sites whose object is being unloaded are left alone.
     *
     * @param whileRunning threads may run the code: every site's rel32 must be 4-byte aligned
     *     (it is then one atomic store; the opcode does not change), and the barrier is owed, not
     *     made: it is paid by {@link #serializePending}, at the end of the next stop, and before
     *     any code is unmapped ({@link #objectFreeing}; the patcher also pays before it frees its
     *     stubs). That is as safe as a barrier per store: each store is one aligned word that a
     *     racing thread sees old or new, both whole instructions that lead to code that stays
     *     mapped until the barrier has made every thread serialize (docs/patching.md, "The owed
     *     barrier"). When false, the caller has stopped every mutator; the stop pays the barrier.
     * @param unloading set to true for each site left alone because its object is being unloaded
     * @throws PatchException if a live site does not hold the branch to {@code from[i]}; nothing is written
     * @throws IllegalArgumentException if {@code whileRunning} and a site's rel32 is not aligned
     */
    void writeBranches(BranchSite[] sites, long[] from, long[] to, int n, boolean whileRunning, boolean[] unloading)
            throws PatchException {
        if (whileRunning) {
            for (int i = 0; i < n; i++) {
                if (!sites[i].aligned()) {
                    throw new IllegalArgumentException(String.format("0x%x: an unaligned rel32 needs a stop", sites[i].address));
                }
            }
        }
        synchronized (LOCK) {
            int wrong = checkBranches(sites, from, n, unloading);
            if (wrong >= 0) {
                BranchSite s = sites[wrong];
                long at = s.address - 1;
                byte[] found = alias(sectionOf(s), "checking a call site").asSlice(at - sectionOf(s).start, BRANCH_SIZE)
                        .toArray(ValueLayout.JAVA_BYTE);
                throw new PatchException(String.format("%s at 0x%x: expected [%s], found [%s]; nothing written",
                        s.describe(to[wrong]), at, X86Code.hex(X86Code.fromLong(
                                X86Code.branchBytes(s.opcode, s.disp(from[wrong])), BRANCH_SIZE)), X86Code.hex(found)));
            }
            long now = System.nanoTime();
            for (int i = 0; i < n; i++) {
                if (unloading[i]) {
                    continue;
                }
                BranchSite site = sites[i];
                Section s = site.section;
                long offset = site.address - s.start;
                int disp = site.disp(to[i]);
                if (whileRunning) {
                    // The opcode stays: the only bytes that change are the aligned rel32's, one
                    // atomic store (a release store, a plain mov on x86: the barrier it owes,
                    // not a fence, is what orders it for other processors' instruction fetch).
                    INT.setRelease(s.alias, offset, disp);
                } else {
                    s.alias.set(INT_UNALIGNED, offset, disp);
                }
                unserialized++;
                log.add(site.address - 1, BRANCH_SIZE, X86Code.branchBytes(site.opcode, site.disp(from[i])),
                        X86Code.branchBytes(site.opcode, disp), whileRunning, site, to[i], now);
            }
        }
    }

    // ---- any write ---------------------------------------------------------------------------------

    /**
     * Replaces {@code expected} at {@code address} with {@code replacement}.
     *
     * @param whileRunning make the change with one atomic store, as threads may run the code; it
     *     fails if the changed bytes do not fit in one naturally aligned 4- or 8-byte word, and
     *     makes the barrier before it returns. When false, the caller has stopped every mutator.
     * @throws PatchException if the bytes there are not {@code expected} or it is not loaded
     *     code; nothing is written
     */
    void write(long address, byte[] expected, byte[] replacement, boolean whileRunning, String what)
            throws PatchException {
        if (expected.length != replacement.length) {
            throw new IllegalArgumentException(expected.length + " expected bytes, " + replacement.length + " new");
        }
        synchronized (LOCK) {
            int n = expected.length;
            Section s = section(address, n);
            if (s == null) {
                throw new PatchException(String.format("%s at 0x%x: not in the code of a loaded object", what, address));
            }
            try {
                store(alias(s, what), address - s.start, address, expected, replacement, whileRunning, what);
            } catch (IllegalStateException unloaded) {
                // The object's scope closed under us: its unload won, and nothing was written.
                throw new PatchException(String.format("%s at 0x%x: its object is being unloaded; nothing written", what,
                        address), unloaded);
            }
        }
    }

    /** The check and the store, through {@code alias} (the section's) at {@code offset}. Holds LOCK. */
    private void store(MemorySegment alias, long offset, long address, byte[] expected, byte[] replacement,
            boolean whileRunning, String what) throws PatchException {
        int n = expected.length;
        if (MemorySegment.mismatch(alias, offset, offset + n, MemorySegment.ofArray(expected), 0, n) >= 0) {
            byte[] found = alias.asSlice(offset, n).toArray(ValueLayout.JAVA_BYTE);
            throw new PatchException(String.format("%s at 0x%x: expected [%s], found [%s]; nothing written", what,
                    address, X86Code.hex(expected), X86Code.hex(found)));
        }
        int first = 0;
        while (first < n && expected[first] == replacement[first]) {
            first++;
        }
        if (first == n) {
            log.add(address, expected, replacement, whileRunning, what);
            return;
        }
        int last = n - 1;
        while (expected[last] == replacement[last]) {
            last--;
        }
        if (!whileRunning) {
            MemorySegment.copy(MemorySegment.ofArray(replacement), 0, alias, offset, n);
            unserialized++;
            log.add(address, expected, replacement, false, what);
            return;
        }
        long lo = address + first;
        long hi = address + last;
        int width = Math.floorDiv(lo, 4) == Math.floorDiv(hi, 4) ? 4 : Math.floorDiv(lo, 8) == Math.floorDiv(hi, 8) ? 8 : 0;
        if (width == 0) {
            throw new PatchException(String.format("%s at 0x%x: the bytes that change, [0x%x, 0x%x], do not fit"
                    + " one aligned 4- or 8-byte word; such a patch needs a safepoint", what, address, lo, hi));
        }
        // The whole aligned word, new bytes inside the patch, current bytes around it. The word may
        // reach past the patch, and past this section into the object's next one (code sections
        // are page-grouped): then its alias is looked up as one range of the object's code.
        long word = Math.floorDiv(lo, width) * width;
        long wordOffset = offset + (word - address);
        if (wordOffset < 0 || wordOffset + width > alias.byteSize()) {
            alias = aliases.writable(word, width).orElseThrow(() -> new PatchException(String.format(
                    "%s at 0x%x: the aligned word at 0x%x is not all loaded code", what, address, word)));
            wordOffset = 0;
        }
        long value = width == 4 ? Integer.toUnsignedLong((int) INT.getVolatile(alias, wordOffset))
                : (long) LONG.getVolatile(alias, wordOffset);
        for (int i = 0; i < width; i++) {
            long at = word + i - address;
            if (at >= 0 && at < n) {
                value = value & ~(0xFFL << (8 * i)) | Byte.toUnsignedLong(replacement[(int) at]) << (8 * i);
            }
        }
        if (width == 4) {
            INT.setVolatile(alias, wordOffset, (int) value);
        } else {
            LONG.setVolatile(alias, wordOffset, value);
        }
        CoreSync.serializeAllThreads();
        log.add(address, expected, replacement, true, what);
    }

    List<Patch> log() {
        synchronized (LOCK) {
            return log.snapshot();
        }
    }

    long patches() {
        synchronized (LOCK) {
            return log.count();
        }
    }
}
