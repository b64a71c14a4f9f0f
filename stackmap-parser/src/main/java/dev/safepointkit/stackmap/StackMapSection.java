package dev.safepointkit.stackmap;

import dev.safepointkit.stackmap.internal.ByteReader;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * A whole {@code .llvm_stackmaps} section: one stack map for a relocatable object, one per input
 * object, back to back, for a linked file.
 *
 * <p>Immutable after {@link #parse}; safe to share between threads while the section's memory is
 * neither written nor freed.
 */
public final class StackMapSection {
    private final MemorySegment segment;
    private final ByteOrder order;
    private final List<StackMap> stackMaps;

    private StackMapSection(MemorySegment segment, ByteOrder order, List<StackMap> stackMaps) {
        this.segment = segment;
        this.order = order;
        this.stackMaps = stackMaps;
    }

    /**
     * Parses every stack map in the section. Zero bytes after the last one are accepted as the
     * linker's alignment padding; anything else must be another complete stack map.
     *
     * <p>Nothing is copied: {@code section} must stay valid and unwritten while the result is used.
     *
     * @param section the bytes of the whole {@code .llvm_stackmaps} section
     * @param order the byte order of the object file it comes from
     * @return the section, holding at least one stack map
     * @throws StackMapFormatException if the section is empty or any stack map in it is malformed
     */
    public static StackMapSection parse(MemorySegment section, ByteOrder order) throws StackMapFormatException {
        ByteReader in = new ByteReader(section, order);
        if (in.size() == 0) {
            throw new StackMapFormatException(0, "Header", "the section is empty");
        }
        List<StackMap> maps = new ArrayList<>();
        long offset = 0;
        while (offset < in.size() && !onlyZerosFrom(in, offset)) {
            StackMap map = StackMap.parse(in.slice(offset, in.size() - offset), offset);
            maps.add(map);
            offset += map.byteSize();
        }
        if (maps.isEmpty()) {
            throw new StackMapFormatException(0, "Header.Version",
                    "version 0 is not supported (this parser reads version " + StackMap.VERSION + ")");
        }
        return new StackMapSection(section, order, List.copyOf(maps));
    }

    private static boolean onlyZerosFrom(ByteReader in, long offset) {
        for (long i = offset; i < in.size(); i++) {
            if (in.u8(i) != 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * The section's bytes, trailing padding included.
     *
     * @return the segment given to {@link #parse}
     */
    public MemorySegment segment() {
        return segment;
    }

    /**
     * The byte order the section is read in.
     *
     * @return the order given to {@link #parse}
     */
    public ByteOrder byteOrder() {
        return order;
    }

    /**
     * The stack maps in section order; never empty.
     *
     * @return an unmodifiable list
     */
    public List<StackMap> stackMaps() {
        return stackMaps;
    }

    /**
     * Call-site records in all stack maps together.
     *
     * @return the sum of the stack maps' {@link StackMap#recordCount()}, summed on each call
     */
    public long recordCount() {
        long n = 0;
        for (StackMap map : stackMaps) {
            n += map.recordCount();
        }
        return n;
    }
}
