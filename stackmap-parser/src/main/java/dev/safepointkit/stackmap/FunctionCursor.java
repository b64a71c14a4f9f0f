package dev.safepointkit.stackmap;

/**
 * A reusable view of one StkSizeRecord: {@link StackMap#function(int, FunctionCursor)} moves it to
 * a function; the getters read in place and allocate nothing.
 *
 * <p>Mutable: one thread at a time may move and read a cursor. {@link FunctionRecord} is the
 * immutable, allocating view of the same record.
 */
public final class FunctionCursor {
    private StackMap map;
    private int index;
    private long offset;

    /** A cursor that points nowhere until a stack map moves it to a function. */
    public FunctionCursor() {
    }

    FunctionCursor moveTo(StackMap map, int index, long offset) {
        this.map = map;
        this.index = index;
        this.offset = offset;
        return this;
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
        return map.word(offset + FunctionRecord.FUNCTION_ADDRESS);
    }

    /**
     * The frame size in bytes, excluding the return address, or
     * {@link FunctionRecord#DYNAMIC_STACK_SIZE} when it is not known statically.
     *
     * @return the u64 StackSize field
     */
    public long stackSize() {
        return map.word(offset + FunctionRecord.STACK_SIZE);
    }

    /**
     * Whether the frame size is unknown statically, so a walker cannot step over the frame by size.
     *
     * @return true when StackSize is {@link FunctionRecord#DYNAMIC_STACK_SIZE}
     */
    public boolean hasDynamicStackSize() {
        return stackSize() == FunctionRecord.DYNAMIC_STACK_SIZE;
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
     * Index, in the stack map, of this function's first call-site record.
     *
     * @return the index for {@link StackMap#record(int, RecordCursor)}; equal to the next
     *     function's when this one has no records
     */
    public int firstRecordIndex() {
        return map.firstRecordOf(index);
    }

    /**
     * Moves {@code into} to this function's {@code i}-th call-site record.
     *
     * @param i the record's index within this function, in {@code [0, recordCount())}
     * @param into the cursor to move
     * @return {@code into}
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public RecordCursor record(int i, RecordCursor into) {
        if (i < 0 || i >= recordCount()) {
            throw new IndexOutOfBoundsException("record " + i + " of function " + index + " with " + recordCount());
        }
        return map.record(firstRecordIndex() + i, into);
    }

    @Override
    public String toString() {
        return "FunctionRecord[" + index + ", address=0x" + Long.toHexString(functionAddress()) + ", stackSize="
                + Long.toUnsignedString(stackSize()) + ", records=" + recordCount() + "]";
    }
}
