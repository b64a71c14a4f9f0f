package dev.safepointkit.stackmap;

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
    private int index;
    private int offset;
    /**
     * u32 InstructionOffset, u16 flags, u16 NumLocations as a little-endian word (a big-endian
     * record's fields swapped into it): few values for the JIT to keep live in the caller's loop.
     */
    private long header;
    private int liveOutCount;

    /**
     * Always 0, and not final on purpose: or-ed into an entry's index, it keeps the JIT from
     * seeing the entry's address as a linear function of the caller's loop counter. A record has
     * a handful of entries, and for loops that short the range-check elimination C2 would apply
     * (pre-, main and post-loops, with limits computed on every entry into the loop) costs far
     * more than the two compares per entry it saves (measured with the parse comparison's loop:
     * reading every field took 2.1 to 2.25 ms without it, 1.77 to 1.85 ms with it).
     */
    private static int opaqueZero = 0;

    /** A cursor that points nowhere until a stack map moves it to a record. */
    public RecordCursor() {
    }

    /** Moves to record {@code index}, which starts at {@code offset}; parsing validated both. */
    RecordCursor moveTo(StackMap map, int index, int offset) {
        long word = map.bytes.get(StackMap.WORD, offset + CallSiteRecord.INSTRUCTION_OFFSET);
        if (map.bigEndian) {
            word = Integer.toUnsignedLong(Integer.reverseBytes((int) word))
                    | Short.toUnsignedLong(Short.reverseBytes((short) (word >>> 32))) << 32
                    | Short.toUnsignedLong(Short.reverseBytes((short) (word >>> 48))) << 48;
        }
        // u16 padding, u16 NumLiveOuts: the high half of a little-endian 32-bit load.
        int liveOuts = map.bytes.get(StackMap.HALF_WORD, CallSiteRecord.liveOutHeader(offset, (int) (word >>> 48))) >>> 16;
        if (map.bigEndian) {
            liveOuts = Short.toUnsignedInt(Short.reverseBytes((short) liveOuts));
        }
        this.map = map;
        this.index = index;
        this.offset = offset;
        this.header = word;
        this.liveOutCount = liveOuts;
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
        return map.word(offset + CallSiteRecord.ID);
    }

    /**
     * Offset from the function's start: for a statepoint, the return address of the call; for a
     * patchpoint, the first byte of its sled; for a stackmap, the end of the preceding code.
     *
     * @return the offset in bytes from the function's first instruction, in {@code [0, 2^32)}
     */
    public long instructionOffset() {
        return header & 0xFFFF_FFFFL;
    }

    /**
     * Reserved; LLVM writes 0.
     *
     * @return the u16 field as stored
     */
    public int flags() {
        return (int) (header >>> 32) & 0xFFFF;
    }

    /**
     * The number of live locations, as NumLocations says (validated against the section's size).
     *
     * @return the count, in {@code [0, 65535]}
     */
    public int locationCount() {
        return (int) (header >>> 48);
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
        int at = i | opaqueZero;
        if (Integer.compareUnsigned(at, locationCount()) >= 0) {
            throw new IndexOutOfBoundsException("location " + i + " of record with " + locationCount());
        }
        return into.moveTo(map, offset + CallSiteRecord.LOCATIONS + (long) at * Location.SIZE);
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
        int at = i | opaqueZero;
        if (Integer.compareUnsigned(at, liveOutCount) >= 0) {
            throw new IndexOutOfBoundsException("live-out " + i + " of record with " + liveOutCount);
        }
        return into.moveTo(map, liveOutOffset(at));
    }

    long liveOutOffset(int i) {
        return CallSiteRecord.liveOutHeader(offset, locationCount()) + CallSiteRecord.LIVE_OUTS + (long) i * LiveOut.SIZE;
    }

    @Override
    public String toString() {
        return "CallSiteRecord[" + index + ", id=" + Long.toUnsignedString(id()) + ", instructionOffset="
                + instructionOffset() + ", locations=" + locationCount() + ", liveOuts=" + liveOutCount + "]";
    }
}
