package dev.safepointkit.stackmap.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Reads unsigned and signed integers of a fixed byte order from a {@link MemorySegment}.
 *
 * <p>Immutable and safe to share between threads; reads are plain loads. Offsets are not checked
 * here beyond the segment's own bounds check: the decoders validate every offset against the
 * segment size before they read, so a read out of bounds is a bug in a decoder, not bad input.
 *
 * <p>Unaligned layouts are used because heap segments over {@code byte[]} only allow byte
 * alignment, and linked sections need not keep the natural alignment of every field.
 */
public final class ByteReader {
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment segment;
    private final ByteOrder order;
    // Loads are little endian; a big-endian reader swaps. One static layout per width keeps the
    // access sites monomorphic for the JIT whichever order a file has.
    private final boolean swap;

    public ByteReader(MemorySegment segment, ByteOrder order) {
        this.segment = segment;
        this.order = order;
        this.swap = order == ByteOrder.BIG_ENDIAN;
    }

    public MemorySegment segment() {
        return segment;
    }

    public ByteOrder order() {
        return order;
    }

    /** Whether multi-byte fields are stored most significant byte first. */
    public boolean isBigEndian() {
        return swap;
    }

    public long size() {
        return segment.byteSize();
    }

    /** A reader over {@code [offset, offset + length)} of this one, in the same byte order. */
    public ByteReader slice(long offset, long length) {
        return new ByteReader(segment.asSlice(offset, length), order);
    }

    public long u64(long offset) {
        long v = segment.get(U64, offset);
        return swap ? Long.reverseBytes(v) : v;
    }

    /** The 32-bit field at {@code offset} as stored; callers decide whether it is signed. */
    public int i32(long offset) {
        int v = segment.get(U32, offset);
        return swap ? Integer.reverseBytes(v) : v;
    }

    public long u32(long offset) {
        return Integer.toUnsignedLong(i32(offset));
    }

    public int u16(long offset) {
        short v = segment.get(U16, offset);
        return Short.toUnsignedInt(swap ? Short.reverseBytes(v) : v);
    }

    public int u8(long offset) {
        return Byte.toUnsignedInt(segment.get(ValueLayout.JAVA_BYTE, offset));
    }
}
