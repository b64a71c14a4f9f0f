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

    public StackMap stackMap() {
        return map;
    }

    public int index() {
        return index;
    }

    /** Offset of this record from the start of the section. */
    public long sectionOffset() {
        return map.sectionOffset() + offset;
    }

    /**
     * The address as stored: the function's address in a linked file, 0 in a relocatable object
     * until a loader applies the section's relocations.
     */
    public long functionAddress() {
        return map.reader().u64(offset + FUNCTION_ADDRESS);
    }

    /**
     * The frame size in bytes, excluding the return address, or {@link #DYNAMIC_STACK_SIZE} when
     * the function's frame size is not known statically.
     */
    public long stackSize() {
        return map.reader().u64(offset + STACK_SIZE);
    }

    public boolean hasDynamicStackSize() {
        return stackSize() == DYNAMIC_STACK_SIZE;
    }

    /** How many call-site records belong to this function (validated to fit an int). */
    public int recordCount() {
        return map.firstRecordOf(index + 1) - map.firstRecordOf(index);
    }

    /** Index, in the stack map, of this function's first call-site record. */
    public int firstRecordIndex() {
        return map.firstRecordOf(index);
    }

    /** This function's {@code i}-th call-site record. */
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
