package dev.safepointkit.stackmap;

/**
 * A view of one StkSizeRecord: a function that has stack map records, its frame size and how
 * many records it owns. Reads from the stack map's memory on each call; immutable.
 */
public final class FunctionRecord {
    static final int SIZE = 24;
    static final int FUNCTION_ADDRESS = 0;
    static final int STACK_SIZE = 8;
    static final int RECORD_COUNT = 16;

    /** The StackSize LLVM writes when the frame size is not static (dynamic alloca, realignment). */
    public static final long DYNAMIC_STACK_SIZE = -1L;

    private final StackMap map;
    private final int index;
    private final long offset;

    FunctionRecord(StackMap map, int index, long offset) {
        this.map = map;
        this.index = index;
        this.offset = offset;
    }

    /**
     * The stack map this record was parsed from, which owns the memory it reads.
     *
     * @return the enclosing stack map
     */
    public StackMap stackMap() {
        return map;
    }

    /**
     * Index of this function record in its stack map.
     *
     * @return the index, in {@code [0, stackMap().functionCount())}
     */
    public int index() {
        return index;
    }

    /**
     * Offset of this record from the start of the section.
     *
     * @return the byte offset of the FunctionAddress field in its section (where a relocatable
     *     object's relocation for it points)
     */
    public long sectionOffset() {
        return map.sectionOffset() + offset;
    }

    /**
     * The address as stored: the function's address in a linked file, 0 in a relocatable object
     * until a loader applies the section's relocations.
     *
     * @return the u64 FunctionAddress field
     */
    public long functionAddress() {
        return map.reader().u64(offset + FUNCTION_ADDRESS);
    }

    /**
     * The frame size in bytes, excluding the return address, or {@link #DYNAMIC_STACK_SIZE} when
     * the function's frame size is not known statically.
     *
     * @return the u64 StackSize field
     */
    public long stackSize() {
        return map.reader().u64(offset + STACK_SIZE);
    }

    /**
     * Whether the frame size is unknown statically, so a walker cannot step over the frame by size.
     *
     * @return true when StackSize is {@link #DYNAMIC_STACK_SIZE}
     */
    public boolean hasDynamicStackSize() {
        return stackSize() == DYNAMIC_STACK_SIZE;
    }

    /**
     * How many call-site records belong to this function (validated to fit an int).
     *
     * @return the RecordCount field, at least 0
     */
    public int recordCount() {
        return map.firstRecordOf(index + 1) - map.firstRecordOf(index);
    }

    /**
     * Index, in the stack map, of this function's first call-site record: the records of all
     * earlier functions come before it.
     *
     * @return the index for {@link StackMap#record(int)}; equal to the next function's when this
     *     one has no records
     */
    public int firstRecordIndex() {
        return map.firstRecordOf(index);
    }

    /**
     * This function's {@code i}-th call-site record.
     *
     * @param i the record's index within this function, in {@code [0, recordCount())}
     * @return a new view of the record
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public CallSiteRecord record(int i) {
        if (i < 0 || i >= recordCount()) {
            throw new IndexOutOfBoundsException("record " + i + " of function " + index + " with " + recordCount());
        }
        return map.record(firstRecordIndex() + i);
    }

    @Override
    public String toString() {
        return "FunctionRecord[" + index + ", address=0x" + Long.toHexString(functionAddress()) + ", stackSize="
                + Long.toUnsignedString(stackSize()) + ", records=" + recordCount() + "]";
    }
}
