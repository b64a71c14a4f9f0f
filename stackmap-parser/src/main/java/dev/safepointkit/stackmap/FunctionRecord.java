package dev.safepointkit.stackmap;

/**
 * A view of one StkSizeRecord: a function that has stack map records, its frame size and how
 * many records it owns. Immutable, allocated per call of {@link StackMap#function(int)};
 * {@link FunctionCursor}, which this view wraps, reads the same fields without allocating.
 *
 * <p>Layout: u64 FunctionAddress, u64 StackSize, u64 RecordCount.
 */
public final class FunctionRecord {
    static final int SIZE = 24;
    static final int FUNCTION_ADDRESS = 0;
    static final int STACK_SIZE = 8;
    static final int RECORD_COUNT = 16;

    /** The StackSize LLVM writes when the frame size is not static (dynamic alloca, realignment). */
    public static final long DYNAMIC_STACK_SIZE = -1L;

    private final FunctionCursor at;

    FunctionRecord(FunctionCursor at) {
        this.at = at;
    }

    /**
     * The stack map this record was parsed from, which owns the memory it reads.
     *
     * @return the enclosing stack map
     */
    public StackMap stackMap() {
        return at.stackMap();
    }

    /**
     * Index of this function record in its stack map.
     *
     * @return the index, in {@code [0, stackMap().functionCount())}
     */
    public int index() {
        return at.index();
    }

    /**
     * Offset of this record from the start of the section.
     *
     * @return the byte offset of the FunctionAddress field in its section (where a relocatable
     *     object's relocation for it points)
     */
    public long sectionOffset() {
        return at.sectionOffset();
    }

    /**
     * The address as stored: the function's address in a linked file, 0 in a relocatable object
     * until a loader applies the section's relocations.
     *
     * @return the u64 FunctionAddress field
     */
    public long functionAddress() {
        return at.functionAddress();
    }

    /**
     * The frame size in bytes, excluding the return address, or {@link #DYNAMIC_STACK_SIZE} when
     * the function's frame size is not known statically.
     *
     * @return the u64 StackSize field
     */
    public long stackSize() {
        return at.stackSize();
    }

    /**
     * Whether the frame size is unknown statically, so a walker cannot step over the frame by size.
     *
     * @return true when StackSize is {@link #DYNAMIC_STACK_SIZE}
     */
    public boolean hasDynamicStackSize() {
        return at.hasDynamicStackSize();
    }

    /**
     * How many call-site records belong to this function (validated to fit an int).
     *
     * @return the RecordCount field, at least 0
     */
    public int recordCount() {
        return at.recordCount();
    }

    /**
     * Index, in the stack map, of this function's first call-site record: the records of all
     * earlier functions come before it.
     *
     * @return the index for {@link StackMap#record(int)}; equal to the next function's when this
     *     one has no records
     */
    public int firstRecordIndex() {
        return at.firstRecordIndex();
    }

    /**
     * This function's {@code i}-th call-site record.
     *
     * @param i the record's index within this function, in {@code [0, recordCount())}
     * @return a new view of the record
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public CallSiteRecord record(int i) {
        return new CallSiteRecord(at.record(i, new RecordCursor()));
    }

    @Override
    public String toString() {
        return at.toString();
    }
}
