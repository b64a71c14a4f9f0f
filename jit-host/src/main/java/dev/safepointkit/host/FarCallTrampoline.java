package dev.safepointkit.host;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.OptionalLong;

/**
 * The host's far-call trampoline: {@code jmp *0(%rip)} followed by the 8-byte target, an absolute
 * jump from anywhere. The linker puts one in an object's code group for each undefined function
 * that a {@code call rel32} cannot reach, and links the call to it ({@link CallSite#viaTrampoline}).
 * Built here and decoded here, so no other module knows its bytes.
 *
 * <p>Stateless and thread safe.
 */
public final class FarCallTrampoline {
    /** Bytes per trampoline, 16 so that each starts 16-byte aligned. */
    public static final int SIZE = 16;
    /** {@code jmp *0(%rip)}: FF 25 and a zero displacement; the target follows at {@link #TARGET_OFFSET}. */
    private static final short JMP_RIP = (short) 0x25FF;
    private static final int TARGET_OFFSET = 6;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private FarCallTrampoline() {
    }

    /** Writes a trampoline to {@code target} at the start of {@code out}. */
    static void write(MemorySegment out, long target) {
        out.set(U16, 0, JMP_RIP);
        out.set(U32, 2, 0);
        out.set(U64, TARGET_OFFSET, target);
    }

    /**
     * Where the trampoline at the start of {@code code} jumps. Decodes the bytes as they are now:
     * the caller reads code that no one rewrites meanwhile (a trampoline never changes once linked).
     *
     * @param code loaded code, at least {@link #SIZE} bytes to hold a trampoline
     * @return the absolute target; empty if {@code code} does not start with a trampoline
     */
    public static OptionalLong target(MemorySegment code) {
        if (code.byteSize() < TARGET_OFFSET + 8 || code.get(U16, 0) != JMP_RIP || code.get(U32, 2) != 0) {
            return OptionalLong.empty();
        }
        return OptionalLong.of(code.get(U64, TARGET_OFFSET));
    }
}
