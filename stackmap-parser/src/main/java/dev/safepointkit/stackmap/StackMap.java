package dev.safepointkit.stackmap;

import dev.safepointkit.stackmap.internal.ByteReader;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * One LLVM stack map (format version 3), decoded in place over the bytes of a section.
 *
 * <p>{@link #parse} checks every count and offset against the bytes available before it keeps
 * anything, and remembers where each call-site record starts (records have variable size). After
 * that the cursors it moves ({@link FunctionCursor}, {@link RecordCursor}, {@link LocationCursor},
 * {@link LiveOutCursor}, reusable and allocation-free) and the views it hands out
 * ({@link FunctionRecord}, {@link CallSiteRecord}, {@link Location}, {@link LiveOut}, one object
 * each) read fields straight from the segment and cannot fail. Nothing is copied.
 *
 * <p>Immutable once parsed: safe to share between threads as long as nobody writes the
 * underlying memory. The segment's owner (its arena) must outlive this object and its views.
 *
 * <p>Layout, in the section's byte order:
 * <pre>
 * Header        u8 Version(3), u8 0, u16 0, u32 NumFunctions, u32 NumConstants, u32 NumRecords
 * StkSizeRecord u64 FunctionAddress, u64 StackSize, u64 RecordCount          x NumFunctions
 * Constant      u64 LargeConstant                                           x NumConstants
 * StkMapRecord  u64 PatchPoint ID, u32 InstructionOffset, u16 0, u16 NumLocations,
 *               Location x NumLocations, pad to 8, u16 0, u16 NumLiveOuts,
 *               LiveOut x NumLiveOuts, pad to 8                             x NumRecords
 * </pre>
 */
public final class StackMap {
    /** The only format version this parser reads. */
    public static final int VERSION = 3;

    static final int HEADER_SIZE = 16;
    static final int HEADER_VERSION = 0;
    static final int HEADER_NUM_FUNCTIONS = 4;
    static final int HEADER_NUM_CONSTANTS = 8;
    static final int HEADER_NUM_RECORDS = 12;
    static final int CONSTANT_SIZE = 8;

    /**
     * The loads every cursor uses: whole little-endian words, unaligned (heap segments over
     * {@code byte[]} allow no more). A big-endian section is read with the same loads and its
     * fields swapped, so each access site stays one plain load for the JIT.
     */
    static final ValueLayout.OfLong WORD = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt HALF_WORD = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final ByteReader in;
    /** The bytes of this stack map (as {@link #segment()}), for the cursors' loads. */
    final MemorySegment bytes;
    /** Whether the section is big-endian: the cursors swap what they load. */
    final boolean bigEndian;
    private final long sectionOffset;
    private final int functionCount;
    private final int constantCount;
    private final int recordCount;
    private final long constantsOffset;
    /**
     * Each call-site record's start (relative to this stack map) and counts, as
     * {@link CallSiteRecord#recordEntry} packs them: a cursor moved to a record needs no load from
     * the section for its counts.
     */
    private final long[] records;
    /** Index of each function's first record; one more entry holds the record count. */
    private final int[] firstRecordOfFunction;

    private StackMap(ByteReader in, long sectionOffset, int functionCount, int constantCount, int recordCount,
            long[] records, int[] firstRecordOfFunction) {
        this.in = in;
        this.bytes = in.segment();
        this.bigEndian = in.isBigEndian();
        this.sectionOffset = sectionOffset;
        this.functionCount = functionCount;
        this.constantCount = constantCount;
        this.recordCount = recordCount;
        this.constantsOffset = HEADER_SIZE + (long) functionCount * FunctionRecord.SIZE;
        this.records = records;
        this.firstRecordOfFunction = firstRecordOfFunction;
    }

    /**
     * Parses the stack map that starts at byte 0 of {@code bytes}; bytes after its end are left
     * alone (see {@link StackMapSection} for sections that hold several).
     *
     * <p>Validates the header, every count and every call-site record against {@code bytes}, and
     * keeps a table of record offsets and counts (8 bytes per record); the bytes are not copied, so
     * {@code bytes} must stay valid and unwritten for as long as the result is used.
     *
     * @param bytes the stack map, possibly followed by other bytes; it must end within the first 2 GiB
     * @param order the byte order of the object file the section comes from
     * @param sectionOffset where {@code bytes} starts in its section, for error messages
     * @return the parsed stack map, whose {@link #byteSize()} says where it ends
     * @throws StackMapFormatException if the version is not {@value #VERSION}, a count does not fit
     *     the bytes, the functions' record counts do not add up to NumRecords, or a record is
     *     truncated or has an unknown location kind or an out-of-range constant index; the message
     *     names the offending field and its byte offset from the start of the section
     */
    public static StackMap parse(MemorySegment bytes, ByteOrder order, long sectionOffset) throws StackMapFormatException {
        return parse(new ByteReader(bytes, order), sectionOffset);
    }

    static StackMap parse(ByteReader all, long sectionOffset) throws StackMapFormatException {
        // Offsets inside one stack map are kept in ints: a stack map over 2 GiB is refused below.
        long limit = Math.min(all.size(), Integer.MAX_VALUE);
        Bounds bounds = new Bounds(limit, sectionOffset);
        bounds.require(0, HEADER_SIZE, "Header");
        int version = all.u8(HEADER_VERSION);
        if (version != VERSION) {
            throw new StackMapFormatException(sectionOffset + HEADER_VERSION, "Header.Version",
                    "version " + version + " is not supported (this parser reads version " + VERSION + ")");
        }
        long numFunctions = all.u32(HEADER_NUM_FUNCTIONS);
        long numConstants = all.u32(HEADER_NUM_CONSTANTS);
        long numRecords = all.u32(HEADER_NUM_RECORDS);

        long functionsEnd = bounds.requireArray(HEADER_NUM_FUNCTIONS, "Header.NumFunctions", numFunctions,
                HEADER_SIZE, FunctionRecord.SIZE, "function records");
        long constantsEnd = bounds.requireArray(HEADER_NUM_CONSTANTS, "Header.NumConstants", numConstants,
                functionsEnd, CONSTANT_SIZE, "constants");
        // Every record takes at least MIN_SIZE bytes, so this bounds the allocations below by the
        // bytes really present, whatever NumRecords claims.
        bounds.requireArray(HEADER_NUM_RECORDS, "Header.NumRecords", numRecords,
                constantsEnd, CallSiteRecord.MIN_SIZE, "call-site records");

        int[] firstRecord = new int[(int) numFunctions + 1];
        long assigned = 0;
        for (int f = 0; f < numFunctions; f++) {
            long countOffset = HEADER_SIZE + (long) f * FunctionRecord.SIZE + FunctionRecord.RECORD_COUNT;
            long count = all.u64(countOffset);
            firstRecord[f] = (int) assigned;
            if (Long.compareUnsigned(count, numRecords - assigned) > 0) {
                throw new StackMapFormatException(sectionOffset + countOffset, "StkSizeRecord[" + f + "].RecordCount",
                        Long.toUnsignedString(count) + " records, but only " + (numRecords - assigned)
                                + " of NumRecords=" + numRecords + " remain for this and later functions");
            }
            assigned += count;
        }
        firstRecord[(int) numFunctions] = (int) assigned;
        if (assigned != numRecords) {
            throw new StackMapFormatException(sectionOffset + HEADER_NUM_RECORDS, "Header.NumRecords",
                    "NumRecords is " + numRecords + " but the functions' RecordCount fields add up to " + assigned);
        }

        long[] records = new long[(int) numRecords];
        long offset = CallSiteRecord.validateAll(all.segment(), all.isBigEndian(), limit, constantsEnd, records, (int) numConstants);
        if (offset < 0) {
            // Something is wrong: the record-by-record checks find the first problem and name it.
            offset = constantsEnd;
            for (int r = 0; r < numRecords; r++) {
                offset = CallSiteRecord.validate(all, bounds, offset, r, (int) numConstants);
            }
            throw new IllegalStateException("the fast checks refused a stack map that the detailed checks accept");
        }
        ByteReader own = all.slice(0, offset);
        return new StackMap(own, sectionOffset, (int) numFunctions, (int) numConstants, (int) numRecords,
                records, firstRecord);
    }

    /**
     * The bytes of this stack map alone, from its header to the end of its last record.
     *
     * @return a slice of the segment given to {@link #parse}, with the same owner
     */
    public MemorySegment segment() {
        return in.segment();
    }

    /**
     * The byte order every field is read in.
     *
     * @return the order given to {@link #parse}
     */
    public ByteOrder byteOrder() {
        return in.order();
    }

    /**
     * Where this stack map starts in its section.
     *
     * @return the byte offset given to {@link #parse}; 0 for the first stack map of a section
     */
    public long sectionOffset() {
        return sectionOffset;
    }

    /**
     * Size in bytes, header to the end of the last record's padding.
     *
     * @return the size; the next stack map of a linked section starts this many bytes later
     */
    public long byteSize() {
        return in.size();
    }

    /**
     * The format version from the header.
     *
     * @return always {@value #VERSION}, since {@link #parse} refuses any other
     */
    public int version() {
        return in.u8(HEADER_VERSION);
    }

    /**
     * The number of StkSizeRecords (functions with stack map records).
     *
     * @return NumFunctions from the header
     */
    public int functionCount() {
        return functionCount;
    }

    /**
     * The number of entries in the constants table.
     *
     * @return NumConstants from the header
     */
    public int constantCount() {
        return constantCount;
    }

    /**
     * The number of call-site records, over all functions.
     *
     * @return NumRecords from the header
     */
    public int recordCount() {
        return recordCount;
    }

    /**
     * Function record {@code index}, a new view each call.
     *
     * @param index in {@code [0, functionCount())}
     * @return a view of the StkSizeRecord
     * @throws IndexOutOfBoundsException if {@code index} is out of range
     */
    public FunctionRecord function(int index) {
        return new FunctionRecord(function(index, new FunctionCursor()));
    }

    /**
     * Moves {@code into} to function record {@code index}; allocates nothing.
     *
     * @param index in {@code [0, functionCount())}
     * @param into the cursor to move; its previous position is forgotten
     * @return {@code into}
     * @throws IndexOutOfBoundsException if {@code index} is out of range
     */
    public FunctionCursor function(int index, FunctionCursor into) {
        return into.moveTo(this, index, HEADER_SIZE + (long) checkIndex(index, functionCount, "function") * FunctionRecord.SIZE);
    }

    /**
     * Entry {@code index} of the constants table, a 64-bit value (print unsigned, as LLVM does).
     *
     * @param index in {@code [0, constantCount())}
     * @return the LargeConstant field
     * @throws IndexOutOfBoundsException if {@code index} is out of range
     */
    public long constant(int index) {
        return word(constantsOffset + (long) checkIndex(index, constantCount, "constant") * CONSTANT_SIZE);
    }

    /**
     * Call-site record {@code index}, a new view each call; constant time (record offsets were
     * found by {@link #parse}).
     *
     * @param index in {@code [0, recordCount())}; records are in function order
     * @return a view of the StkMapRecord
     * @throws IndexOutOfBoundsException if {@code index} is out of range
     */
    public CallSiteRecord record(int index) {
        return new CallSiteRecord(record(index, new RecordCursor()));
    }

    /**
     * Moves {@code into} to call-site record {@code index}; constant time, allocates nothing.
     *
     * @param index in {@code [0, recordCount())}; records are in function order
     * @param into the cursor to move; its previous position is forgotten
     * @return {@code into}
     * @throws IndexOutOfBoundsException if {@code index} is out of range
     */
    public RecordCursor record(int index, RecordCursor into) {
        return into.moveTo(this, index, records[checkIndex(index, recordCount, "record")]);
    }

    /**
     * The index of the function that call-site record {@code recordIndex} belongs to, by binary
     * search; allocates nothing.
     *
     * @param recordIndex in {@code [0, recordCount())}
     * @return the function's index, for {@link #function(int)}
     * @throws IndexOutOfBoundsException if {@code recordIndex} is out of range
     */
    public int functionOfRecord(int recordIndex) {
        checkIndex(recordIndex, recordCount, "record");
        // firstRecordOfFunction is non-decreasing; functions with no records share a start, and
        // the record belongs to the last function whose first record is at or before it.
        int lo = 0;
        int hi = functionCount - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (firstRecordOfFunction[mid] <= recordIndex) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo;
    }

    int firstRecordOf(int functionIndex) {
        return firstRecordOfFunction[functionIndex];
    }

    ByteReader reader() {
        return in;
    }

    /**
     * Runs the record-by-record checks (the ones that name a problem) over this stack map and
     * requires them to find the records the fast checks of {@link #parse} found, with the same
     * counts; for tests, which hold the two sets of checks to each other.
     *
     * @throws StackMapFormatException if the detailed checks refuse what the fast ones accepted
     * @throws IllegalStateException if they find different records
     */
    void recheckRecords() throws StackMapFormatException {
        Bounds bounds = new Bounds(in.size(), sectionOffset);
        long offset = constantsOffset + (long) constantCount * CONSTANT_SIZE;
        for (int r = 0; r < recordCount; r++) {
            long next = CallSiteRecord.validate(in, bounds, offset, r, constantCount);
            int locations = in.u16(offset + CallSiteRecord.NUM_LOCATIONS);
            int liveOuts = in.u16(CallSiteRecord.liveOutHeader(offset, locations) + CallSiteRecord.NUM_LIVE_OUTS);
            if (records[r] != CallSiteRecord.recordEntry(offset, locations, liveOuts)) {
                throw new IllegalStateException("record " + r + ": the table has 0x" + Long.toHexString(records[r])
                        + ", the detailed checks found offset " + offset + " with " + locations + " locations and "
                        + liveOuts + " live-outs");
            }
            offset = next;
        }
        if (offset != in.size()) {
            throw new IllegalStateException("the records end at " + offset + ", the stack map at " + in.size());
        }
    }

    /**
     * Copies {@code n} locations from {@code at} (relative to this stack map; parsing validated
     * them) into {@code raw}, three 32-bit words each, as a little-endian section holds them.
     */
    void readLocations(long at, int n, int[] raw) {
        MemorySegment.copy(bytes, HALF_WORD, at, raw, 0, 3 * n);
        if (bigEndian) {
            for (int i = 0; i < 3 * n; i += 3) {
                int w0 = raw[i];
                raw[i] = (w0 & 0xFFFF) | Short.toUnsignedInt(Short.reverseBytes((short) (w0 >>> 16))) << 16;
                raw[i + 1] = Short.toUnsignedInt(Short.reverseBytes((short) raw[i + 1])) | (raw[i + 1] & 0xFFFF_0000);
                raw[i + 2] = Integer.reverseBytes(raw[i + 2]);
            }
        }
    }

    /**
     * Hands the locations from {@code at} to {@code end} (relative to this stack map; parsing
     * validated them) to {@code visitor}. A pair of entries is three words: the first entry's
     * 8-byte head, its field and the second's head low, the rest of that head and its field.
     */
    void visitLocations(long at, long end, LocationVisitor visitor) {
        if (bigEndian) {
            for (long p = at; p < end; p += Location.SIZE) {
                long head = Location.swapHalves(bytes.get(WORD, p));
                visitHead(head, Integer.reverseBytes(bytes.get(HALF_WORD, p + Location.OFFSET_OR_CONSTANT)), visitor);
            }
            return;
        }
        long p = at;
        for (; p + 2 * Location.SIZE <= end; p += 2 * Location.SIZE) {
            long w0 = bytes.get(WORD, p);
            long w1 = bytes.get(WORD, p + 8);
            long w2 = bytes.get(WORD, p + 16);
            visitHead(w0, (int) w1, visitor);
            visitHead(w1 >>> 32 | w2 << 32, (int) (w2 >>> 32), visitor);
        }
        if (p < end) {
            visitHead(bytes.get(WORD, p), bytes.get(HALF_WORD, p + Location.OFFSET_OR_CONSTANT), visitor);
        }
    }

    /** Takes apart a location's head, as a little-endian section holds it: u8 Type, u8 0, u16 Size, u16 DwarfRegNum, u16 0. */
    private static void visitHead(long head, int field, LocationVisitor visitor) {
        visitor.location((int) head & 0xFF, (int) head >>> 16, (int) (head >>> 32) & 0xFFFF, field);
    }

    /** Copies {@code n} live-outs from {@code at} (relative to this stack map) into {@code entries}, as {@link LiveOutArray} keeps them. */
    void readLiveOuts(long at, int n, int[] entries) {
        MemorySegment.copy(bytes, HALF_WORD, at, entries, 0, n);
        if (bigEndian) {
            for (int i = 0; i < n; i++) {
                int word = entries[i];
                entries[i] = (word & 0xFFFF_0000) | Short.toUnsignedInt(Short.reverseBytes((short) word));
            }
        }
    }

    /** The u32 at {@code offset} (relative to this stack map) in the section's byte order. */
    int halfWord(long offset) {
        int w = bytes.get(HALF_WORD, offset);
        return bigEndian ? Integer.reverseBytes(w) : w;
    }

    /** The u64 at {@code offset} (relative to this stack map) in the section's byte order. */
    long word(long offset) {
        long w = bytes.get(WORD, offset);
        return bigEndian ? Long.reverseBytes(w) : w;
    }

    private static int checkIndex(int index, int count, String what) {
        if (index < 0 || index >= count) {
            throw new IndexOutOfBoundsException(what + " index " + index + " out of range [0, " + count + ")");
        }
        return index;
    }

    /**
     * The bytes a stack map may occupy, and error messages with section-relative offsets. The
     * checks take no field names: callers build a name only when a check fails, so validating a
     * large section allocates nothing per record.
     */
    static final class Bounds {
        private final long limit;
        private final long sectionOffset;

        Bounds(long limit, long sectionOffset) {
            this.limit = limit;
            this.sectionOffset = sectionOffset;
        }

        /** Whether {@code length} bytes at {@code offset} (relative to the stack map) are present. */
        boolean fits(long offset, long length) {
            return offset + length <= limit;
        }

        void require(long offset, long length, String field) throws StackMapFormatException {
            if (!fits(offset, length)) {
                throw truncated(offset, length, field);
            }
        }

        StackMapFormatException truncated(long offset, long length, String field) {
            return new StackMapFormatException(sectionOffset + offset, field,
                    "needs " + length + " bytes, only " + Math.max(0, limit - offset) + " remain");
        }

        /**
         * Requires {@code count} elements of {@code elementSize} bytes at {@code arrayOffset};
         * returns the array's end. On failure the error points at the count field, which is what
         * is wrong.
         */
        long requireArray(long countOffset, String countField, long count, long arrayOffset, long elementSize,
                String what) throws StackMapFormatException {
            // count < 2^32 and elementSize is small, so the product cannot overflow a long.
            if (!fits(arrayOffset, count * elementSize)) {
                throw overflow(countOffset, countField, count, arrayOffset, elementSize, what);
            }
            return arrayOffset + count * elementSize;
        }

        StackMapFormatException overflow(long countOffset, String countField, long count, long arrayOffset,
                long elementSize, String what) {
            return new StackMapFormatException(sectionOffset + countOffset, countField,
                    count + " " + what + " need at least " + count * elementSize + " bytes from byte "
                            + (sectionOffset + arrayOffset) + ", only " + Math.max(0, limit - arrayOffset) + " remain");
        }

        long sectionOffset() {
            return sectionOffset;
        }
    }
}
