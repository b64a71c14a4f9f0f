package dev.safepointkit.stackmap;

import dev.safepointkit.stackmap.internal.ByteReader;
import java.lang.foreign.MemorySegment;

/**
 * A view of one StkMapRecord: a stackmap, patchpoint or statepoint call site with its live
 * locations and live-out registers. Immutable, allocated per call of {@link StackMap#record(int)},
 * and allocating a view per location and live-out; {@link RecordCursor}, which this view wraps,
 * reads the same fields without allocating.
 *
 * <p>Which location is what depends on the intrinsic that made the record: for statepoints see
 * {@link StatepointRecord}.
 */
public final class CallSiteRecord {
    static final int ID = 0;
    static final int INSTRUCTION_OFFSET = 8;
    static final int NUM_LOCATIONS = 14;
    static final int LOCATIONS = 16;
    /** Before the live-outs: u16 padding, then u16 NumLiveOuts. */
    static final int NUM_LIVE_OUTS = 2;
    static final int LIVE_OUTS = 4;
    /** Header, no locations, the live-out header, padding: the smallest record there is. */
    static final int MIN_SIZE = 24;

    /** The ID LLVM gives a record whose locations did not fit in NumLocations (it drops them). */
    public static final long OVERFLOW_ID = -1L;

    private final RecordCursor at;

    CallSiteRecord(RecordCursor at) {
        this.at = at;
    }

    /** The cursor this view reads through; not to be moved. */
    RecordCursor cursor() {
        return at;
    }

    /**
     * Checks every record from {@code start} on, in one pass, and stores each one's
     * {@link #recordEntry} in {@code records}; returns where the last one ends, or -1 when
     * something is wrong.
     *
     * <p>The fast path of parsing. Loads are little-endian words read straight from the segment:
     * a record's header word gives NumLocations, and each pair of locations (24 bytes) is three
     * 64-bit words (read four locations per step, then a last pair, then an odd last location), from which the two Type bytes (byte 0 of a location is the low byte of a
     * little-endian load in either byte order) and the two 32-bit fields come; only the fields and
     * the counts need swapping for a big-endian section. Each location is folded into the
     * largest key seen (see {@link #locationKey}), which is compared with the bound once, after the
     * last record; each record costs two bounds checks (its header; its locations with the
     * live-out header), and the end of the last one a third. On -1 the caller runs
     * {@link #validate} from the first record, which finds and names the problem.
     *
     * <p>Finding a record needs two dependent loads from the one before (NumLocations, then
     * NumLiveOuts after the locations). When a record has the size of the one before, which is
     * the common case, the next offset is taken from that size instead, so the processor can go
     * on to the next record while this one's loads are still in flight; the size from the loads
     * is still compared, and a different size takes the offset it gives.
     */
    static long validateAll(MemorySegment seg, boolean bigEndian, long limit, long start, long[] records,
            int constantCount) {
        // The largest key (see locationKey) of any location: the stack map's locations are all
        // valid when it is below keyBound, which is checked once, after the last record.
        long keyBound = ((long) (LocationKind.CONSTANT_INDEX_CODE - 1) << 32) + Integer.toUnsignedLong(constantCount);
        long maxKey = 0;
        long offset = start;
        long lastSize = 0;
        for (int r = 0; r < records.length; r++) {
            if (offset + LOCATIONS > limit) {
                return -1;
            }
            // u32 InstructionOffset, u16 flags, u16 NumLocations.
            long header = seg.get(StackMap.WORD, offset + INSTRUCTION_OFFSET);
            int locationCount = bigEndian ? Short.toUnsignedInt(Short.reverseBytes((short) (header >>> 48)))
                    : (int) (header >>> 48);
            long locations = offset + LOCATIONS;
            long locationsEnd = locations + (long) locationCount * Location.SIZE;
            long liveOutHeader = align8(locationsEnd);
            // Covers the locations too: they end before the live-out header.
            if (liveOutHeader + LIVE_OUTS > limit) {
                return -1;
            }
            long loc = locations;
            // Four locations per step, six words; then a last pair, then an odd last one.
            while (loc + 4 * Location.SIZE <= locationsEnd) {
                maxKey = Math.max(maxKey, pairKey(seg, bigEndian, loc));
                maxKey = Math.max(maxKey, pairKey(seg, bigEndian, loc + 2 * Location.SIZE));
                loc += 4 * Location.SIZE;
            }
            if (loc + 2 * Location.SIZE <= locationsEnd) {
                maxKey = Math.max(maxKey, pairKey(seg, bigEndian, loc));
                loc += 2 * Location.SIZE;
            }
            if (loc < locationsEnd) {
                int field = seg.get(StackMap.HALF_WORD, loc + Location.OFFSET_OR_CONSTANT);
                if (bigEndian) {
                    field = Integer.reverseBytes(field);
                }
                maxKey = Math.max(maxKey, locationKey(seg.get(StackMap.WORD, loc), field));
            }
            // u16 padding, u16 NumLiveOuts: the high half of the word's low 32 bits.
            int liveOuts = (int) (seg.get(StackMap.HALF_WORD, liveOutHeader) >>> 16);
            if (bigEndian) {
                liveOuts = Short.toUnsignedInt(Short.reverseBytes((short) liveOuts));
            }
            long end = align8(liveOutHeader + LIVE_OUTS + (long) liveOuts * LiveOut.SIZE);
            records[r] = recordEntry(offset, locationCount, liveOuts);
            // A record that ends past the limit leaves the next one's header check to fail, or,
            // for the last record, the check after the loop.
            long size = end - offset;
            if (size == lastSize) {
                offset += lastSize;
            } else {
                lastSize = size;
                offset = end;
            }
        }
        if (maxKey >= keyBound || offset > limit) {
            return -1;
        }
        return offset;
    }

    /** The larger key of the two locations at {@code loc}: three words, whose fields are swapped for a big-endian section. */
    private static long pairKey(MemorySegment seg, boolean bigEndian, long loc) {
        long w0 = seg.get(StackMap.WORD, loc);
        long w1 = seg.get(StackMap.WORD, loc + 8);
        long w2 = seg.get(StackMap.WORD, loc + 16);
        int fieldA = (int) w1;
        int fieldB = (int) (w2 >>> 32);
        if (bigEndian) {
            fieldA = Integer.reverseBytes(fieldA);
            fieldB = Integer.reverseBytes(fieldB);
        }
        return Math.max(locationKey(w0, fieldA), locationKey(w1 >>> 32, fieldB));
    }

    /**
     * What the record table keeps of a record: where it starts (below 2^31) in bits 0 to 31,
     * NumLocations in bits 32 to 47, NumLiveOuts in bits 48 to 63.
     */
    static long recordEntry(long offset, int locationCount, int liveOutCount) {
        return offset | (long) locationCount << 32 | (long) liveOutCount << 48;
    }

    /**
     * A location's Type byte (the low byte of {@code typeWord}) less one in bits 32 to 39, and its
     * 32-bit field below: for a valid location (Type 1 to 5, a ConstantIndex within the table)
     * the key is below {@code (4 << 32) + constantCount}, for any other at or above it, so the
     * sign of one subtraction checks both. A Type of 0 wraps to 255.
     */
    private static long locationKey(long typeWord, int field) {
        return ((typeWord - 1) & 0xFF) << 32 | Integer.toUnsignedLong(field);
    }

    /**
     * Checks the record at {@code offset} against the bytes available and returns where the next
     * record starts. Field names for messages are built only on failure.
     */
    static long validate(ByteReader in, StackMap.Bounds bounds, long offset, int index, int constantCount)
            throws StackMapFormatException {
        if (!bounds.fits(offset, LOCATIONS)) {
            throw bounds.truncated(offset, LOCATIONS, field(index, ""));
        }
        int numLocations = in.u16(offset + NUM_LOCATIONS);
        long locations = offset + LOCATIONS;
        if (!bounds.fits(locations, (long) numLocations * Location.SIZE)) {
            throw bounds.overflow(offset + NUM_LOCATIONS, field(index, ".NumLocations"), numLocations, locations,
                    Location.SIZE, "locations");
        }
        for (int i = 0; i < numLocations; i++) {
            long loc = locations + (long) i * Location.SIZE;
            int kind = in.u8(loc + Location.KIND);
            if (!LocationKind.isValid(kind)) {
                throw new StackMapFormatException(bounds.sectionOffset() + loc + Location.KIND,
                        field(index, ".Location[" + i + "].Type"), "unknown location kind " + kind + " (valid: 1 to 5)");
            }
            if (kind == LocationKind.CONSTANT_INDEX.code()) {
                long constant = in.u32(loc + Location.OFFSET_OR_CONSTANT);
                if (constant >= constantCount) {
                    throw new StackMapFormatException(bounds.sectionOffset() + loc + Location.OFFSET_OR_CONSTANT,
                            field(index, ".Location[" + i + "].Offset"),
                            "constant index " + constant + " is outside the constants table of " + constantCount);
                }
            }
        }
        long locationsEnd = locations + (long) numLocations * Location.SIZE;
        long liveOutHeader = align8(locationsEnd);
        if (!bounds.fits(locationsEnd, liveOutHeader - locationsEnd + LIVE_OUTS)) {
            throw bounds.truncated(locationsEnd, liveOutHeader - locationsEnd + LIVE_OUTS, field(index, ".NumLiveOuts"));
        }
        int numLiveOuts = in.u16(liveOutHeader + NUM_LIVE_OUTS);
        long liveOuts = liveOutHeader + LIVE_OUTS;
        if (!bounds.fits(liveOuts, (long) numLiveOuts * LiveOut.SIZE)) {
            throw bounds.overflow(liveOutHeader + NUM_LIVE_OUTS, field(index, ".NumLiveOuts"), numLiveOuts, liveOuts,
                    LiveOut.SIZE, "live-outs");
        }
        long liveOutsEnd = liveOuts + (long) numLiveOuts * LiveOut.SIZE;
        long end = align8(liveOutsEnd);
        if (!bounds.fits(liveOutsEnd, end - liveOutsEnd)) {
            throw bounds.truncated(liveOutsEnd, end - liveOutsEnd, field(index, " padding"));
        }
        return end;
    }

    private static String field(int recordIndex, String suffix) {
        return "StkMapRecord[" + recordIndex + "]" + suffix;
    }

    private static long align8(long offset) {
        return (offset + 7) & ~7L;
    }

    /** Where the live-out header (u16 padding, u16 NumLiveOuts) of a record at {@code offset} starts. */
    static long liveOutHeader(long offset, int locationCount) {
        return align8(offset + LOCATIONS + (long) locationCount * Location.SIZE);
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
     * Index of this record in its stack map, counting from 0 across all its functions.
     *
     * @return the index, in {@code [0, stackMap().recordCount())}
     */
    public int index() {
        return at.index();
    }

    /**
     * Offset of this record from the start of the section.
     *
     * @return the byte offset of the record's ID field in its section
     */
    public long sectionOffset() {
        return at.sectionOffset();
    }

    /**
     * The function this record belongs to. Finds it by binary search over the functions' first
     * records, and allocates the view: keep it if you need it more than once.
     *
     * @return the StkSizeRecord whose RecordCount covers this record
     */
    public FunctionRecord function() {
        return at.stackMap().function(at.functionIndex());
    }

    /**
     * The ID given to the intrinsic (for statepoints, the statepoint ID).
     *
     * @return the 64-bit ID, to be read unsigned; {@link #OVERFLOW_ID} when LLVM dropped the
     *     locations
     */
    public long id() {
        return at.id();
    }

    /**
     * Offset from the function's start: for a statepoint, the return address of the call; for a
     * patchpoint, the first byte of its sled; for a stackmap, the end of the preceding code.
     *
     * @return the offset in bytes from the function's first instruction, in {@code [0, 2^32)}
     */
    public long instructionOffset() {
        return at.instructionOffset();
    }

    /**
     * Reserved; LLVM writes 0.
     *
     * @return the u16 field as stored
     */
    public int flags() {
        return at.flags();
    }

    /**
     * The number of live locations, as NumLocations says (validated against the section's size).
     *
     * @return the count, in {@code [0, 65535]}
     */
    public int locationCount() {
        return at.locationCount();
    }

    /**
     * Location {@code i}, a new view each call. What each location means depends on the intrinsic
     * that made the record (see {@link StatepointRecord} for statepoints).
     *
     * @param i the location's index, in {@code [0, locationCount())}
     * @return a view of the 12-byte Location entry
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public Location location(int i) {
        return new Location(at.location(i, new LocationCursor()));
    }

    /**
     * The number of live-out registers, as NumLiveOuts says; non-zero only for patchpoints (and
     * only if LLVM computed liveness for them).
     *
     * @return the count, in {@code [0, 65535]}
     */
    public int liveOutCount() {
        return at.liveOutCount();
    }

    /**
     * Live-out register {@code i}, a new view each call.
     *
     * @param i the live-out's index, in {@code [0, liveOutCount())}
     * @return a view of the 4-byte LiveOut entry
     * @throws IndexOutOfBoundsException if {@code i} is out of range
     */
    public LiveOut liveOut(int i) {
        return new LiveOut(at.liveOut(i, new LiveOutCursor()));
    }

    @Override
    public String toString() {
        return at.toString();
    }
}
