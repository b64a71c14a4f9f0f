package dev.safepointkit.patch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The newest {@link #CAPACITY} writes into code, kept as primitives in a ring so that recording
 * one costs a few array stores and no allocation: the bytes of a write of up to 8 bytes are kept
 * as a little-endian long, longer ones (whole sleds) as copies; the text of a call site's write
 * is made when the log is read, from the site and the target it was given.
 *
 * <p>Threading: not thread safe; its one owner, {@link CodeWriter}, calls it under the writer's
 * lock only.
 */
final class PatchLog {
    /** How many writes are kept; older ones are dropped, oldest first. */
    static final int CAPACITY = 1 << 16;

    /** What a write did, made into text only when the log is read. */
    @FunctionalInterface
    interface Text {
        String describe(long arg);
    }

    private long[] address = new long[64];
    private long[] nanoTime = new long[64];
    /** The bytes before and after, for writes of at most 8 bytes. */
    private long[] before = new long[64];
    private long[] after = new long[64];
    /** The length in bytes, shifted left by one; the low bit set for a write made while threads ran. */
    private int[] lengthAndMode = new int[64];
    /** For writes longer than 8 bytes: {before, after} copies; else null. */
    private byte[][][] wide = new byte[64][][];
    /** A String, or a {@link Text} to describe {@link #arg}. */
    private Object[] what = new Object[64];
    private long[] arg = new long[64];
    /** Writes recorded, including those dropped. */
    private long count;

    long count() {
        return count;
    }

    /**
     * Records a write of {@code length <= 8} bytes, given as little-endian longs, made at
     * {@code nanos} ({@link System#nanoTime}; the writes of one batch share one reading).
     */
    void add(long at, int length, long bytesBefore, long bytesAfter, boolean whileRunning, Object text, long textArg,
            long nanos) {
        int i = slot();
        address[i] = at;
        nanoTime[i] = nanos;
        before[i] = bytesBefore;
        after[i] = bytesAfter;
        lengthAndMode[i] = mode(length, whileRunning);
        wide[i] = null;
        what[i] = text;
        arg[i] = textArg;
    }

    /** Records a write of any length; the arrays are copied. */
    void add(long at, byte[] bytesBefore, byte[] bytesAfter, boolean whileRunning, String text) {
        if (bytesBefore.length <= 8) {
            add(at, bytesBefore.length, X86Code.toLong(bytesBefore), X86Code.toLong(bytesAfter), whileRunning, text, 0,
                    System.nanoTime());
            return;
        }
        int i = slot();
        address[i] = at;
        nanoTime[i] = System.nanoTime();
        lengthAndMode[i] = mode(bytesBefore.length, whileRunning);
        wide[i] = new byte[][] {bytesBefore.clone(), bytesAfter.clone()};
        what[i] = text;
        arg[i] = 0;
    }

    private static int mode(int length, boolean whileRunning) {
        return length << 1 | (whileRunning ? 1 : 0);
    }

    /** The index the next write goes to: grows the arrays up to the capacity, then wraps. */
    private int slot() {
        if (count < CAPACITY && count == address.length) {
            int n = (int) Math.min(CAPACITY, 2 * count);
            address = Arrays.copyOf(address, n);
            nanoTime = Arrays.copyOf(nanoTime, n);
            before = Arrays.copyOf(before, n);
            after = Arrays.copyOf(after, n);
            lengthAndMode = Arrays.copyOf(lengthAndMode, n);
            wide = Arrays.copyOf(wide, n);
            what = Arrays.copyOf(what, n);
            arg = Arrays.copyOf(arg, n);
        }
        return (int) (count++ % CAPACITY);
    }

    /** {@return the writes kept, oldest first, as records} */
    List<Patch> snapshot() {
        int kept = (int) Math.min(count, CAPACITY);
        List<Patch> out = new ArrayList<>(kept);
        for (long k = count - kept; k < count; k++) {
            int i = (int) (k % CAPACITY);
            int length = lengthAndMode[i] >>> 1;
            byte[] b;
            byte[] a;
            if (wide[i] != null) {
                b = wide[i][0];
                a = wide[i][1];
            } else {
                b = X86Code.fromLong(before[i], length);
                a = X86Code.fromLong(after[i], length);
            }
            String text = what[i] instanceof Text t ? t.describe(arg[i]) : (String) what[i];
            out.add(new Patch(address[i], b, a, text, (lengthAndMode[i] & 1) != 0, nanoTime[i]));
        }
        return List.copyOf(out);
    }
}
