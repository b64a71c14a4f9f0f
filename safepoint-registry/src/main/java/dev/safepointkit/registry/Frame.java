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

    /** Sentinel for {@link #function}: resolve it from the safepoint on first use. */
    private static final int FUNCTION_OF_SAFEPOINT = -2;

    private ObjectTable table;
    private int safepoint = -1;
    private int function = -1;
    /** The frame size from the table entry; FRAME_SIZE_IN_TABLE sends frameSize() to the object's arrays. */
    private int packedFrameSize = SafepointTable.FRAME_SIZE_IN_TABLE;

    /** A lookup hit: the function is found from the safepoint only if asked for. */
    void setSafepoint(ObjectTable table, int safepoint, int packedFrameSize) {
        this.table = table;
        this.safepoint = safepoint;
        this.function = FUNCTION_OF_SAFEPOINT;
        this.packedFrameSize = packedFrameSize;
    }

    void set(ObjectTable table, int safepoint, int function) {
        this.table = table;
        this.safepoint = safepoint;
        this.function = function;
        this.packedFrameSize = SafepointTable.FRAME_SIZE_IN_TABLE;
    }

    private int fn() {
        if (function == FUNCTION_OF_SAFEPOINT) {
            function = table.spFunction[safepoint];
        }
        return function;
    }

    /** Whether the last lookup or locate found a safepoint (not just code). */
    public boolean hasSafepoint() {
        return safepoint >= 0;
    }

    /** Whether the last locate found the function around the pc. */
    public boolean hasFunction() {
        return fn() >= 0;
    }

    public long objectKey() {
        return table.key;
    }

    public String objectName() {
        return table.name;
    }

    public long functionStart() {
        return table.fnStart[fn()];
    }

    /** The function's size in bytes, or 0 when only its stack map names it. */
    public long functionSize() {
        return table.fnSize[fn()];
    }

    /** The function's symbol name, or null when only its stack map names it. */
    public String functionName() {
        return table.fnName[fn()];
    }

    /**
     * The function's frame size without the return address ({@code StackSize}), or
     * {@link #DYNAMIC_FRAME_SIZE} / {@link #UNKNOWN_FRAME_SIZE}.
     */
    public long frameSize() {
        return packedFrameSize != SafepointTable.FRAME_SIZE_IN_TABLE ? packedFrameSize : table.fnFrameSize[fn()];
    }

    public boolean hasDynamicFrameSize() {
        return frameSize() == DYNAMIC_FRAME_SIZE;
    }

    public long returnAddress() {
        return table.spAddress[safepoint];
    }

    /** The ID given to the statepoint, stackmap or patchpoint. */
    public long safepointId() {
        return table.spId[safepoint];
    }

    public SafepointKind kind() {
        return table.spKind[safepoint];
    }

    public int deoptCount() {
        return table.spDeopt[safepoint];
    }

    /** (base, derived) pairs, repeated pairs included. */
    public int pairCount() {
        return table.spPairs[safepoint];
    }

    public int gcAllocaCount() {
        return table.spAllocas[safepoint];
    }

    /** Live values of a stackmap or patchpoint record (0 for statepoints). */
    public int liveCount() {
        return table.spLive[safepoint];
    }

    public int deopt(int i) {
        return table.spFirstLocation[safepoint] + i;
    }

    public int base(int pair) {
        return table.spFirstLocation[safepoint] + deoptCount() + 2 * pair;
    }

    public int derived(int pair) {
        return base(pair) + 1;
    }

    public int gcAlloca(int i) {
        return table.spFirstLocation[safepoint] + deoptCount() + 2 * pairCount() + i;
    }

    public int live(int i) {
        return table.spFirstLocation[safepoint] + i;
    }

    public LocationKind kind(int location) {
        return KINDS[table.locKind[location]];
    }

    public int register(int location) {
        return table.locRegister[location];
    }

    public int offset(int location) {
        return table.locOffset[location];
    }

    public int size(int location) {
        return table.locSize[location];
    }

    /** The value of a Constant or ConstantIndex location. */
    public long constant(int location) {
        return table.locKind[location] == LocationKind.CONSTANT_INDEX.code() ? table.constants[table.locOffset[location]]
                : table.locOffset[location];
    }

    private static final LocationKind[] KINDS = {null, LocationKind.REGISTER, LocationKind.DIRECT, LocationKind.INDIRECT,
        LocationKind.CONSTANT, LocationKind.CONSTANT_INDEX};
}
