package dev.safepointkit.registry;

import dev.safepointkit.stackmap.LocationKind;

/**
 * What {@link SafepointRegistry#lookup} found for one return address: a reusable cursor, owned by
 * the reader thread that passes it in, so that lookups allocate nothing.
 *
 * <p>Not thread safe: one cursor per reader thread. What it points to is immutable and stays
 * valid while the cursor refers to it, also after the object is unregistered (the cursor keeps
 * the decoded table reachable; see {@link SafepointRegistry}).
 *
 * <p>Locations are addressed by index ({@link #deopt}, {@link #base}, {@link #derived},
 * {@link #gcAlloca}, {@link #live}) and read with {@link #kind}, {@link #register}, {@link #offset},
 * {@link #size} and {@link #constant}.
 */
public final class Frame {
    /** {@link #frameSize()} of a function whose frame size is not static (UINT64_MAX in the stack map). */
    public static final long DYNAMIC_FRAME_SIZE = -1;
    /** {@link #frameSize()} of a function that has no stack map record. */
    public static final long UNKNOWN_FRAME_SIZE = ObjectTable.FRAME_SIZE_UNKNOWN;

    /**
     * An immutable array that holds the found object at the entry's object index: a
     * published-objects array ({@link ObjectSlots}) after a lookup, the object index's after a
     * locate. Kept rather than the object itself so that a lookup stores a reference only when a
     * writer has published since this cursor's previous lookup: a reference store is what costs a
     * reader under G1 (its write barrier fences once this cursor is in the old generation).
     */
    private ObjectTable[] tables;
    /**
     * What was found, as a table entry holds it ({@link SafepointTable#value}: object index,
     * safepoint index, frame size): a lookup hit copies the entry it read, one store. A locate
     * that found code but no safepoint holds {@link SafepointTable#valueOfObject}.
     */
    private long entry = SafepointTable.valueOfObject(0);
    /** The function a locate found without a safepoint, or -1; a safepoint's is read from its object. */
    private int function = -1;

    /**
     * An empty cursor: {@link #hasSafepoint()} and {@link #hasFunction()} are false until a
     * {@link SafepointRegistry#lookup} or {@link SafepointRegistry#locate} fills it. Create one per
     * reader thread, ahead of time, so that lookups allocate nothing.
     */
    public Frame() {
    }

    /** A lookup hit: {@code value} is the safepoint's entry, naming an object in {@code tables}. */
    void setSafepoint(ObjectTable[] tables, long value) {
        if (this.tables != tables) {
            this.tables = tables;
        }
        this.entry = value;
    }

    /** A locate that found object {@code index} of {@code tables} and no safepoint: {@code function} of it, or -1. */
    void setCode(ObjectTable[] tables, int index, int function) {
        if (this.tables != tables) {
            this.tables = tables;
        }
        this.entry = SafepointTable.valueOfObject(index);
        this.function = function;
    }

    private ObjectTable table() {
        return tables[SafepointTable.objectSlot(entry)];
    }

    private int safepoint() {
        return SafepointTable.safepointIndex(entry);
    }

    private int fn() {
        int sp = safepoint();
        return sp != SafepointTable.NO_SAFEPOINT ? table().spFunction[sp] : function;
    }

    /**
     * Whether the last lookup or locate found a safepoint (not just code). The safepoint getters
     * ({@link #returnAddress()} to {@link #constant(int)}) may be called only when it did.
     *
     * @return false for a new cursor and after a locate that found code but no safepoint
     */
    public boolean hasSafepoint() {
        return safepoint() != SafepointTable.NO_SAFEPOINT;
    }

    /**
     * Whether the last locate found the function around the pc; always true after a lookup hit.
     * The function getters ({@link #functionStart()} to {@link #frameSize()}) may be called only
     * when it did.
     *
     * @return false for a new cursor and after a locate of a pc in code that no function covers
     */
    public boolean hasFunction() {
        return fn() >= 0;
    }

    /**
     * The key the object holding the found code was registered under. Only after a lookup or
     * locate that returned true.
     *
     * @return the key given to {@link SafepointRegistry#register}
     */
    public long objectKey() {
        return table().key;
    }

    /**
     * The name of the object holding the found code. Only after a lookup or locate that returned
     * true.
     *
     * @return the name given to {@link SafepointRegistry#register}
     */
    public String objectName() {
        return table().name;
    }

    /**
     * Where the function starts. Only when {@link #hasFunction()}.
     *
     * @return the absolute address of its first instruction
     */
    public long functionStart() {
        return table().fnStart[fn()];
    }

    /**
     * The function's size in bytes, or 0 when only its stack map names it. Only when
     * {@link #hasFunction()}.
     *
     * @return the size from its symbol, or 0
     */
    public long functionSize() {
        return table().fnSize[fn()];
    }

    /**
     * The function's symbol name, or null when only its stack map names it. Only when
     * {@link #hasFunction()}.
     *
     * @return the name, or null
     */
    public String functionName() {
        return table().fnName[fn()];
    }

    /**
     * The function's frame size without the return address ({@code StackSize}), or
     * {@link #DYNAMIC_FRAME_SIZE} / {@link #UNKNOWN_FRAME_SIZE}. Only when {@link #hasFunction()}.
     *
     * @return the size in bytes, or one of the two negative sentinels
     */
    public long frameSize() {
        int packed = SafepointTable.packedFrameSize(entry);
        return packed != SafepointTable.FRAME_SIZE_IN_TABLE ? packed : table().fnFrameSize[fn()];
    }

    /**
     * Whether the function's frame size is not static, so its frame cannot be stepped over by
     * size. Only when {@link #hasFunction()}.
     *
     * @return true when {@link #frameSize()} is {@link #DYNAMIC_FRAME_SIZE}
     */
    public boolean hasDynamicFrameSize() {
        return frameSize() == DYNAMIC_FRAME_SIZE;
    }

    /**
     * The safepoint's address. Only when {@link #hasSafepoint()}.
     *
     * @return the record's absolute address, function start plus instruction offset (for a
     *     statepoint, the return address of its call); what a hit of {@code lookup} was given
     */
    public long returnAddress() {
        return table().spAddress[safepoint()];
    }

    /**
     * The safepoint's unwind plan, decoded with {@link UnwindPlan}. Only when {@link #hasSafepoint()}.
     *
     * @return the plan from the object's CFI at the safepoint's call, or {@link UnwindPlan#NONE}
     *     when the object was registered without {@code .eh_frame}
     */
    public long unwindPlan() {
        return table().spUnwind[safepoint()];
    }

    /**
     * How a walker steps from this safepoint's frame to its caller, in {@link UnwindPlan}'s codec,
     * prepared at registration ({@link UnwindPlan#walkStep}): the unwind plan, with an RBP-based
     * CFA of a static-size frame turned into RSP + frame size + 8; without {@code .eh_frame}, the
     * frame size (registers then {@link UnwindPlan#UNDEFINED}) or, for a dynamic frame, its frame
     * pointer. Only when {@link #hasSafepoint()}.
     *
     * @return the step, or {@link UnwindPlan#NONE} when the registry cannot say where the caller is
     */
    public long walkStep() {
        return table().spWalk[2 * safepoint()];
    }

    /**
     * Whether the safepoint's roots were planned at registration: every GC-pointer slot of it is
     * SP-relative, each is listed once ({@link #plannedBaseCount()} bases, then
     * {@link #plannedDerivedCount()} derived ones), in the order a walker adding the record's
     * pairs and then its gc-live allocas would find them. When not (register or RBP-relative
     * roots, malformed pairs), read the record's locations. Only when {@link #hasSafepoint()}.
     *
     * @return true for a planned safepoint, also for a stackmap or patchpoint record (no roots)
     */
    public boolean hasRootPlan() {
        return RootPlan.planned(table().spWalk[2 * safepoint() + 1]);
    }

    /**
     * The number of distinct base slots of a planned safepoint. Only when {@link #hasRootPlan()}.
     *
     * @return the count
     */
    public int plannedBaseCount() {
        return RootPlan.baseCount(table().spWalk[2 * safepoint() + 1]);
    }

    /**
     * The number of distinct derived slots of a planned safepoint. Only when {@link #hasRootPlan()}.
     *
     * @return the count
     */
    public int plannedDerivedCount() {
        return RootPlan.derivedCount(table().spWalk[2 * safepoint() + 1]);
    }

    /**
     * Base slot {@code i} of a planned safepoint. Only when {@link #hasRootPlan()}; the index is
     * not checked.
     *
     * @param i in {@code [0, plannedBaseCount())}
     * @return its offset from the frame's SP at the call
     */
    public int plannedBaseOffset(int i) {
        return table().rootSlots[RootPlan.first(table().spWalk[2 * safepoint() + 1]) + i];
    }

    /**
     * Derived slot {@code i} of a planned safepoint. Only when {@link #hasRootPlan()}; the index is
     * not checked.
     *
     * @param i in {@code [0, plannedDerivedCount())}
     * @return its offset from the frame's SP at the call
     */
    public int plannedDerivedOffset(int i) {
        long plan = table().spWalk[2 * safepoint() + 1];
        return table().rootSlots[RootPlan.first(plan) + RootPlan.baseCount(plan) + 2 * i];
    }

    /**
     * The base of derived slot {@code i} of a planned safepoint. Only when {@link #hasRootPlan()};
     * the index is not checked.
     *
     * @param i in {@code [0, plannedDerivedCount())}
     * @return an index in {@code [0, plannedBaseCount())}
     */
    public int plannedDerivedBase(int i) {
        long plan = table().spWalk[2 * safepoint() + 1];
        return table().rootSlots[RootPlan.first(plan) + RootPlan.baseCount(plan) + 2 * i + 1];
    }

    /**
     * The ID given to the statepoint, stackmap or patchpoint. Only when {@link #hasSafepoint()}.
     *
     * @return the record's 64-bit ID, to be read unsigned
     */
    public long safepointId() {
        return table().spId[safepoint()];
    }

    /**
     * How the safepoint's locations are laid out, as the registry's {@link RecordClassifier} said.
     * Only when {@link #hasSafepoint()}.
     *
     * @return {@link SafepointKind#STATEPOINT} (read deopt, pairs, allocas) or
     *     {@link SafepointKind#STACKMAP} (read live values)
     */
    public SafepointKind kind() {
        return table().spKind[safepoint()];
    }

    /**
     * The number of deopt locations of a statepoint. Only when {@link #hasSafepoint()}.
     *
     * @return the count; 0 for a {@link SafepointKind#STACKMAP} safepoint
     */
    public int deoptCount() {
        return table().spDeopt[safepoint()];
    }

    /**
     * (base, derived) pairs, repeated pairs included. Only when {@link #hasSafepoint()}.
     *
     * @return the count; 0 for a {@link SafepointKind#STACKMAP} safepoint
     */
    public int pairCount() {
        return table().spPairs[safepoint()];
    }

    /**
     * The number of gc-live allocas of a statepoint: stack slots holding GC pointers, to be
     * updated in place. Only when {@link #hasSafepoint()}.
     *
     * @return the count; 0 for a {@link SafepointKind#STACKMAP} safepoint
     */
    public int gcAllocaCount() {
        return table().spAllocas[safepoint()];
    }

    /**
     * Live values of a stackmap or patchpoint record (0 for statepoints). Only when
     * {@link #hasSafepoint()}.
     *
     * @return the record's location count, or 0
     */
    public int liveCount() {
        return table().spLive[safepoint()];
    }

    /**
     * The location handle of deopt value {@code i}, for {@link #kind(int)} and the other
     * location getters. Only when {@link #hasSafepoint()}.
     *
     * <p>The index is not checked: one out of range names another safepoint's location or throws
     * {@link ArrayIndexOutOfBoundsException} when it is used.
     *
     * @param i in {@code [0, deoptCount())}
     * @return the location handle
     */
    public int deopt(int i) {
        return table().spFirstLocation[safepoint()] + i;
    }

    /**
     * The location handle of the base pointer of pair {@code pair}. Only when
     * {@link #hasSafepoint()}.
     *
     * <p>The index is not checked: one out of range names another safepoint's location or throws
     * {@link ArrayIndexOutOfBoundsException} when it is used.
     *
     * @param pair in {@code [0, pairCount())}
     * @return the location handle
     */
    public int base(int pair) {
        return table().spFirstLocation[safepoint()] + deoptCount() + 2 * pair;
    }

    /**
     * The location handle of the derived pointer of pair {@code pair}, which moves by as much as
     * its base. Only when {@link #hasSafepoint()}.
     *
     * <p>The index is not checked: one out of range names another safepoint's location or throws
     * {@link ArrayIndexOutOfBoundsException} when it is used.
     *
     * @param pair in {@code [0, pairCount())}
     * @return the location handle
     */
    public int derived(int pair) {
        return base(pair) + 1;
    }

    /**
     * The location handle of gc-live alloca {@code i}, a Direct location. Only when
     * {@link #hasSafepoint()}.
     *
     * <p>The index is not checked: one out of range names another safepoint's location or throws
     * {@link ArrayIndexOutOfBoundsException} when it is used.
     *
     * @param i in {@code [0, gcAllocaCount())}
     * @return the location handle
     */
    public int gcAlloca(int i) {
        return table().spFirstLocation[safepoint()] + deoptCount() + 2 * pairCount() + i;
    }

    /**
     * The location handle of live value {@code i} of a stackmap or patchpoint record. Only when
     * {@link #hasSafepoint()}.
     *
     * <p>The index is not checked: one out of range names another safepoint's location or throws
     * {@link ArrayIndexOutOfBoundsException} when it is used.
     *
     * @param i in {@code [0, liveCount())}
     * @return the location handle
     */
    public int live(int i) {
        return table().spFirstLocation[safepoint()] + i;
    }

    /**
     * How the location describes its value.
     *
     * @param location a handle from {@link #deopt}, {@link #base}, {@link #derived},
     *     {@link #gcAlloca} or {@link #live} of the safepoint this cursor points at
     * @return the kind, which says which of the other getters mean anything
     */
    public LocationKind kind(int location) {
        return KINDS[table().locKind[location]];
    }

    /**
     * The DWARF register of a Register location, or the base register of a Direct or Indirect
     * one.
     *
     * @param location a handle from {@link #deopt}, {@link #base}, {@link #derived},
     *     {@link #gcAlloca} or {@link #live} of the safepoint this cursor points at
     * @return the DWARF register number
     */
    public int register(int location) {
        return table().locRegister[location];
    }

    /**
     * The signed offset from {@link #register(int)} of a Direct or Indirect location.
     *
     * @param location a handle from {@link #deopt}, {@link #base}, {@link #derived},
     *     {@link #gcAlloca} or {@link #live} of the safepoint this cursor points at
     * @return the offset in bytes
     */
    public int offset(int location) {
        return table().locOffset[location];
    }

    /**
     * The size of the value.
     *
     * @param location a handle from {@link #deopt}, {@link #base}, {@link #derived},
     *     {@link #gcAlloca} or {@link #live} of the safepoint this cursor points at
     * @return the size in bytes, as the stack map gives it
     */
    public int size(int location) {
        return table().locSize[location];
    }

    /**
     * The value of a Constant or ConstantIndex location; meaningless for the other kinds.
     *
     * @param location a handle from {@link #deopt}, {@link #base}, {@link #derived},
     *     {@link #gcAlloca} or {@link #live} of the safepoint this cursor points at
     * @return the sign-extended small constant, or the 64-bit entry of the constants table
     */
    public long constant(int location) {
        return table().locKind[location] == LocationKind.CONSTANT_INDEX.code() ? table().constants[table().locOffset[location]]
                : table().locOffset[location];
    }

    private static final LocationKind[] KINDS = {null, LocationKind.REGISTER, LocationKind.DIRECT, LocationKind.INDIRECT,
        LocationKind.CONSTANT, LocationKind.CONSTANT_INDEX};
}
