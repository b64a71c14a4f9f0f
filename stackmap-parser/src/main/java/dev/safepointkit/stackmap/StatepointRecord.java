package dev.safepointkit.stackmap;

/**
 * A call-site record read as a {@code gc.statepoint}: what a precise collector needs at the call.
 *
 * <p>LLVM lays the locations out as three Constant locations (calling convention, flags, number
 * of deopt locations), the deopt locations, then a (base, derived) pair per relocated pointer
 * (a base used after the call is a pair with itself; pairs may repeat), then one Direct location
 * per gc-live alloca, whose contents the collector updates in place. The stack map gives no count
 * for the pairs: they are told from the allocas because GC pointers are spilled (Indirect), kept
 * in registers (Register) or constant, never Direct, while an alloca is always Direct. So the
 * number of GC locations can be odd.
 *
 * <p>Immutable; a view over the record's memory plus three counts.
 */
public final class StatepointRecord {
    /** Locations before the deopt values: calling convention, flags, deopt count. */
    public static final int LEADING_CONSTANTS = 3;

    private final CallSiteRecord record;
    private final int deoptCount;
    private final int pairCount;
    private final int allocaCount;

    private StatepointRecord(CallSiteRecord record, int deoptCount, int pairCount, int allocaCount) {
        this.record = record;
        this.deoptCount = deoptCount;
        this.pairCount = pairCount;
        this.allocaCount = allocaCount;
    }

    /**
     * Reads {@code record} as a statepoint. Counts the deopt locations, pairs and trailing allocas
     * once; the getters then index straight into the record.
     *
     * @param record a record made by {@code gc.statepoint}; other records usually fail the checks
     *     below, but not always (a stackmap record with suitable constants passes)
     * @return the statepoint view of {@code record}
     * @throws StackMapFormatException if it does not have the statepoint layout: fewer than three
     *     leading constants, more deopt locations than the record holds, or an odd number of
     *     locations between the deopt values and the trailing allocas
     */
    public static StatepointRecord of(CallSiteRecord record) throws StackMapFormatException {
        long layout = layout(record.cursor(), new LocationCursor());
        if (layout == NOT_A_STATEPOINT) {
            throw whyNot(record);
        }
        return new StatepointRecord(record, deoptCount(layout), pairCount(layout), gcAllocaCount(layout));
    }

    /** What {@link #layout} returns for a record without the statepoint layout. */
    public static final long NOT_A_STATEPOINT = -1L;

    /**
     * The statepoint layout of {@code record} as {@link #of} checks it, without allocating or
     * throwing: the counts packed in one long for {@link #deoptCount(long)},
     * {@link #pairCount(long)} and {@link #gcAllocaCount(long)}, or {@link #NOT_A_STATEPOINT}
     * ({@link #of} then says why). For readers that decode many records, such as a registry.
     *
     * @param record the record, positioned by its stack map
     * @param scratch a cursor this method moves over the record's locations
     * @return the packed counts, or {@link #NOT_A_STATEPOINT}
     */
    public static long layout(RecordCursor record, LocationCursor scratch) {
        int n = record.locationCount();
        if (n < LEADING_CONSTANTS) {
            return NOT_A_STATEPOINT;
        }
        for (int i = 0; i < LEADING_CONSTANTS; i++) {
            int kind = record.location(i, scratch).kindCode();
            if (kind != LocationKind.CONSTANT_CODE && kind != LocationKind.CONSTANT_INDEX_CODE) {
                return NOT_A_STATEPOINT;
            }
        }
        long deopt = record.location(2, scratch).constantValue();
        if (deopt < 0 || deopt > n - LEADING_CONSTANTS) {
            return NOT_A_STATEPOINT;
        }
        int gcStart = LEADING_CONSTANTS + (int) deopt;
        int allocas = 0;
        while (allocas < n - gcStart && record.location(n - 1 - allocas, scratch).kindCode() == LocationKind.DIRECT_CODE) {
            allocas++;
        }
        int paired = n - gcStart - allocas;
        if (paired % 2 != 0) {
            return NOT_A_STATEPOINT;
        }
        // Each count is below 2^16: a record has at most 65535 locations.
        return deopt << 32 | (long) (paired / 2) << 16 | allocas;
    }

    /**
     * The deopt location count of a {@link #layout}.
     *
     * @param layout a value of {@link #layout} other than {@link #NOT_A_STATEPOINT}
     * @return the number of deopt locations
     */
    public static int deoptCount(long layout) {
        return (int) (layout >>> 32);
    }

    /**
     * The (base, derived) pair count of a {@link #layout}.
     *
     * @param layout a value of {@link #layout} other than {@link #NOT_A_STATEPOINT}
     * @return the number of pairs
     */
    public static int pairCount(long layout) {
        return (int) (layout >>> 16) & 0xFFFF;
    }

    /**
     * The gc-live alloca count of a {@link #layout}.
     *
     * @param layout a value of {@link #layout} other than {@link #NOT_A_STATEPOINT}
     * @return the number of trailing Direct locations
     */
    public static int gcAllocaCount(long layout) {
        return (int) layout & 0xFFFF;
    }

    /** The exception {@link #of} throws for a record {@link #layout} refused: the first check it fails. */
    private static StackMapFormatException whyNot(CallSiteRecord record) {
        int n = record.locationCount();
        String name = "StkMapRecord[" + record.index() + "]";
        if (n < LEADING_CONSTANTS) {
            return new StackMapFormatException(record.sectionOffset() + CallSiteRecord.NUM_LOCATIONS,
                    name + ".NumLocations", "a statepoint record has at least " + LEADING_CONSTANTS
                            + " locations (calling convention, flags, deopt count), this one has " + n);
        }
        for (int i = 0; i < LEADING_CONSTANTS; i++) {
            Location loc = record.location(i);
            if (loc.kind() != LocationKind.CONSTANT && loc.kind() != LocationKind.CONSTANT_INDEX) {
                return new StackMapFormatException(loc.sectionOffset(), name + ".Location[" + i + "].Type",
                        "statepoint location " + i + " must be a constant, found " + loc.kind());
            }
        }
        Location deoptField = record.location(2);
        long deopt = deoptField.constantValue();
        if (deopt < 0 || deopt > n - LEADING_CONSTANTS) {
            return new StackMapFormatException(deoptField.sectionOffset(), name + ".Location[2]",
                    "deopt count " + deopt + " exceeds the " + (n - LEADING_CONSTANTS) + " locations after the header");
        }
        int gcStart = LEADING_CONSTANTS + (int) deopt;
        int allocas = 0;
        while (allocas < n - gcStart && record.location(n - 1 - allocas).kind() == LocationKind.DIRECT) {
            allocas++;
        }
        int paired = n - gcStart - allocas;
        return new StackMapFormatException(record.location(gcStart).sectionOffset(), name + ".Location[" + gcStart + "]",
                paired + " base/derived locations before " + allocas + " gc-live allocas: not a whole number of pairs");
    }

    /**
     * The call-site record this view reads.
     *
     * @return the record given to {@link #of}
     */
    public CallSiteRecord record() {
        return record;
    }

    /**
     * The statepoint ID.
     *
     * @return the record's ID, to be read unsigned
     */
    public long id() {
        return record.id();
    }

    /**
     * The calling convention of the statepoint's call, as LLVM numbers them.
     *
     * @return location 0's constant (0 for the C calling convention)
     */
    public long callingConvention() {
        return record.location(0).constantValue();
    }

    /**
     * The statepoint's flags operand.
     *
     * @return location 1's constant
     */
    public long flags() {
        return record.location(1).constantValue();
    }

    /**
     * The number of deopt locations, from location 2.
     *
     * @return the count, at least 0 and at most the locations after the three constants
     */
    public int deoptCount() {
        return deoptCount;
    }

    /**
     * Deopt location {@code i}: a value the statepoint's deopt operand bundle keeps live.
     *
     * @param i in {@code [0, deoptCount())}
     * @return a new view of the location
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public Location deopt(int i) {
        return record.location(LEADING_CONSTANTS + checkIndex(i, deoptCount, "deopt location"));
    }

    /**
     * Number of (base, derived) pairs, repeated pairs included.
     *
     * @return the count, at least 0
     */
    public int pairCount() {
        return pairCount;
    }

    /**
     * Where the base object of pair {@code pair} is: the pointer a collector marks and moves.
     *
     * @param pair in {@code [0, pairCount())}
     * @return a new view of the location (as LLVM writes them: Register, Indirect or Constant)
     * @throws IndexOutOfBoundsException if {@code pair} is out of range
     */
    public Location base(int pair) {
        return record.location(pairsStart() + 2 * checkIndex(pair, pairCount, "pair"));
    }

    /**
     * Where the derived pointer of pair {@code pair} is: a pointer into (or just past) the base
     * object, which a collector must move by the same distance as the base. Equals the base's
     * location when the base itself is used after the call.
     *
     * @param pair in {@code [0, pairCount())}
     * @return a new view of the location (as LLVM writes them: Register, Indirect or Constant)
     * @throws IndexOutOfBoundsException if {@code pair} is out of range
     */
    public Location derived(int pair) {
        return record.location(pairsStart() + 2 * checkIndex(pair, pairCount, "pair") + 1);
    }

    /**
     * The number of trailing Direct locations, the gc-live allocas.
     *
     * @return the count, at least 0
     */
    public int gcAllocaCount() {
        return allocaCount;
    }

    /**
     * A gc-live alloca: a Direct location whose slot holds a GC pointer.
     *
     * @param i in {@code [0, gcAllocaCount())}
     * @return a new view of the Direct location; the slot is at {@code reg + offset}
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public Location gcAlloca(int i) {
        return record.location(pairsStart() + 2 * pairCount + checkIndex(i, allocaCount, "gc-live alloca"));
    }

    private int pairsStart() {
        return LEADING_CONSTANTS + deoptCount;
    }

    private static int checkIndex(int index, int count, String what) {
        if (index < 0 || index >= count) {
            throw new IndexOutOfBoundsException(what + " " + index + " out of range [0, " + count + ")");
        }
        return index;
    }
}
