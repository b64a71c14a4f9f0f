package dev.safepointkit.stackmap;

/**
 * A reusable view of one StkMapRecord: {@link StackMap#record(int, RecordCursor)} moves it to a
 * record, taking the record's offset and counts from the table parsing made (no load from the
 * section); the ID, InstructionOffset and flags are read when asked for, and
 * {@link #location(int, LocationCursor)} and {@link #liveOut(int, LiveOutCursor)} move the
 * caller's cursors to its entries. Nothing here allocates.
 *
 * <p>Mutable: one thread at a time may move and read a cursor (keep one per thread and reuse
 * it). {@link CallSiteRecord} is the immutable, allocating view of the same record.
 */
public final class RecordCursor {
    private StackMap map;
    private int index;
    /**
     * The record's table entry (offset and counts, see {@link CallSiteRecord#recordEntry}): the
     * one value besides the stack map that the JIT keeps live in the caller's loop.
     */
    private long entry;

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

    /** Moves to record {@code index}, whose table entry parsing made; reads nothing from the section. */
    RecordCursor moveTo(StackMap map, int index, long entry) {
        this.map = map;
        this.index = index;
        this.entry = entry;
        return this;
    }

    private int offset() {
        return (int) entry;
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
        return map.sectionOffset() + offset();
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
        return map.word(offset() + CallSiteRecord.ID);
    }

    /**
     * Offset from the function's start: for a statepoint, the return address of the call; for a
     * patchpoint, the first byte of its sled; for a stackmap, the end of the preceding code.
     *
     * @return the offset in bytes from the function's first instruction, in {@code [0, 2^32)}
     */
    public long instructionOffset() {
        return Integer.toUnsignedLong(map.halfWord(offset() + CallSiteRecord.INSTRUCTION_OFFSET));
    }

    /**
     * Reserved; LLVM writes 0.
     *
     * @return the u16 field as stored
     */
    public int flags() {
        // The u16 after the u32 InstructionOffset.
        return map.reader().u16(offset() + CallSiteRecord.INSTRUCTION_OFFSET + 4);
    }

    /**
     * The number of live locations, as NumLocations says (validated against the section's size).
     *
     * @return the count, in {@code [0, 65535]}
     */
    public int locationCount() {
        return (int) (entry >>> 32) & 0xFFFF;
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
        return into.moveTo(map, offset() + CallSiteRecord.LOCATIONS + (long) at * Location.SIZE);
    }

    /**
     * Reads all of this record's locations into {@code into}, replacing what it held: one bulk
     * copy of the record's location entries into the caller's array (and, for a big-endian
     * section, one pass to swap their fields). Allocates nothing unless {@code into} has to grow.
     *
     * @param into the array to fill; its previous contents are forgotten
     * @return {@code into}, holding {@link #locationCount()} locations
     */
    public LocationArray locations(LocationArray into) {
        int n = locationCount();
        into.clearFor(n);
        map.readLocations(offset() + CallSiteRecord.LOCATIONS, n, into.raw);
        return into;
    }

    /**
     * Hands each of this record's locations to {@code visitor}, in order, reading them straight
     * from the section (little-endian: two entries at a time as three whole words; big-endian: one
     * at a time, its fields swapped), with none of a cursor's or an array's own loads and stores.
     * Allocates nothing.
     *
     * @param visitor called once per location, on this thread; what it throws ends the loop and
     *     reaches the caller
     */
    public void forEachLocation(LocationVisitor visitor) {
        long at = offset() + CallSiteRecord.LOCATIONS;
        map.visitLocations(at, at + (long) locationCount() * Location.SIZE, visitor);
    }

    /**
     * The number of live-out registers, as NumLiveOuts says; non-zero only for patchpoints (and
     * only if LLVM computed liveness for them).
     *
     * @return the count, in {@code [0, 65535]}
     */
    public int liveOutCount() {
        return (int) (entry >>> 48);
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
        if (Integer.compareUnsigned(at, liveOutCount()) >= 0) {
            throw new IndexOutOfBoundsException("live-out " + i + " of record with " + liveOutCount());
        }
        return into.moveTo(map, liveOutOffset(at));
    }

    /**
     * Reads all of this record's live-outs into {@code into}, replacing what it held. Allocates
     * nothing unless {@code into} has to grow.
     *
     * @param into the array to fill; its previous contents are forgotten
     * @return {@code into}, holding {@link #liveOutCount()} live-outs
     */
    public LiveOutArray liveOuts(LiveOutArray into) {
        int n = liveOutCount();
        into.clearFor(n);
        if (n != 0) {
            map.readLiveOuts(liveOutOffset(0), n, into.entries);
        }
        return into;
    }

    long liveOutOffset(int i) {
        return CallSiteRecord.liveOutHeader(offset(), locationCount()) + CallSiteRecord.LIVE_OUTS + (long) i * LiveOut.SIZE;
    }

    @Override
    public String toString() {
        return "CallSiteRecord[" + index + ", id=" + Long.toUnsignedString(id()) + ", instructionOffset="
                + instructionOffset() + ", locations=" + locationCount() + ", liveOuts=" + liveOutCount() + "]";
    }
}
