package dev.safepointkit.stackmap;

import dev.safepointkit.stackmap.internal.ByteReader;

/**
 * A reusable view of one StkMapRecord: {@link StackMap#record(int, RecordCursor)} moves it to a
 * record, reading its header (one word) and the live-out count once; {@link #location(int, LocationCursor)} and
 * {@link #liveOut(int, LiveOutCursor)} move the caller's cursors to its entries. Nothing here
 * allocates.
 *
 * <p>Mutable: one thread at a time may move and read a cursor (keep one per thread and reuse
 * it). {@link CallSiteRecord} is the immutable, allocating view of the same record.
 */
public final class RecordCursor {
    private StackMap map;
    private ByteReader in;
    private int index;
    private int offset;
    private long instructionOffset;
    private int flags;
    private int locationCount;
    private long liveOutHeader;
    private int liveOutCount;

    /** A cursor that points nowhere until a stack map moves it to a record. */
    public RecordCursor() {
    }

    /** Moves to record {@code index}, which starts at {@code offset}; parsing validated both. */
    RecordCursor moveTo(StackMap map, int index, int offset) {
        ByteReader reader = map.reader();
        // u32 InstructionOffset, u16 flags, u16 NumLocations as one 64-bit word in the file's order.
        long word = reader.u64(offset + CallSiteRecord.INSTRUCTION_OFFSET);
        boolean bigEndian = reader.isBigEndian();
        int locations = (int) (bigEndian ? word : word >>> 48) & 0xFFFF;
        long header = CallSiteRecord.liveOutHeader(offset, locations);
        this.map = map;
        this.in = reader;
        this.index = index;
        this.offset = offset;
        this.instructionOffset = bigEndian ? word >>> 32 : word & 0xFFFF_FFFFL;
        this.flags = (int) (word >>> (bigEndian ? 16 : 32)) & 0xFFFF;
        this.locationCount = locations;
        this.liveOutHeader = header;
        this.liveOutCount = reader.u16(header + CallSiteRecord.NUM_LIVE_OUTS);
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
     * Index of this record in its stack map, counting from 0 across all its functions.
     *
     * @return the index, in {@code [0, stackMap().recordCount())}
     */
    public int index() {
        return index;
    }

    /**
     * Offset of this record from the start of the section.
     *
     * @return the byte offset of the record's ID field in its section
     */
    public long sectionOffset() {
        return map.sectionOffset() + offset;
    }

    /**
     * The index of the function this record belongs to, by binary search (see
     * {@link StackMap#functionOfRecord(int)}).
     *
     * @return the function's index, for {@link StackMap#function(int, FunctionCursor)}
     */
    public int functionIndex() {
        return map.functionOfRecord(index);
    }

    /**
     * The ID given to the intrinsic (for statepoints, the statepoint ID).
     *
     * @return the 64-bit ID, to be read unsigned; {@link CallSiteRecord#OVERFLOW_ID} when LLVM
     *     dropped the locations
     */
    public long id() {
        return in.u64(offset + CallSiteRecord.ID);
    }

    /**
     * Offset from the function's start: for a statepoint, the return address of the call; for a
     * patchpoint, the first byte of its sled; for a stackmap, the end of the preceding code.
     *
     * @return the offset in bytes from the function's first instruction, in {@code [0, 2^32)}
     */
    public long instructionOffset() {
        return instructionOffset;
    }

    /**
     * Reserved; LLVM writes 0.
     *
     * @return the u16 field as stored
     */
    public int flags() {
        return flags;
    }

    /**
     * The number of live locations, as NumLocations says (validated against the section's size).
     *
     * @return the count, in {@code [0, 65535]}
     */
    public int locationCount() {
        return locationCount;
    }

    /**
     * Moves {@code into} to location {@code i} of this record.
     *
     * @param i the location's index, in {@code [0, locationCount())}
     * @param into the cursor to move; its previous position is forgotten
     * @return {@code into}
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public LocationCursor location(int i, LocationCursor into) {
        if (i < 0 || i >= locationCount) {
            throw new IndexOutOfBoundsException("location " + i + " of record with " + locationCount);
        }
        return into.moveTo(map, locationOffset(i));
    }

    /**
     * The number of live-out registers, as NumLiveOuts says; non-zero only for patchpoints (and
     * only if LLVM computed liveness for them).
     *
     * @return the count, in {@code [0, 65535]}
     */
    public int liveOutCount() {
        return liveOutCount;
    }

    /**
     * Moves {@code into} to live-out {@code i} of this record.
     *
     * @param i the live-out's index, in {@code [0, liveOutCount())}
     * @param into the cursor to move
     * @return {@code into}
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public LiveOutCursor liveOut(int i, LiveOutCursor into) {
        if (i < 0 || i >= liveOutCount) {
            throw new IndexOutOfBoundsException("live-out " + i + " of record with " + liveOutCount);
        }
        return into.moveTo(map, liveOutOffset(i));
    }

    long locationOffset(int i) {
        return offset + CallSiteRecord.LOCATIONS + (long) i * Location.SIZE;
    }

    long liveOutOffset(int i) {
        return liveOutHeader + CallSiteRecord.LIVE_OUTS + (long) i * LiveOut.SIZE;
    }

    @Override
    public String toString() {
        return "CallSiteRecord[" + index + ", id=" + Long.toUnsignedString(id()) + ", instructionOffset="
                + instructionOffset() + ", locations=" + locationCount + ", liveOuts=" + liveOutCount + "]";
    }
}
