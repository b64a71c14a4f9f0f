package dev.safepointkit.patch;

/**
 * One write into code, as the patch log keeps it.
 *
 * @param address the first byte written
 * @param before the bytes there before the write
 * @param after the bytes there after it
 * @param what what the write did, e.g. {@code relink call in caller.o to g}
 * @param whileRunning true for a single atomic store made while other threads may run the code,
 *     false for a write made while every mutator was stopped at a safepoint
 * @param nanoTime {@link System#nanoTime} at the write
 */
public record Patch(long address, byte[] before, byte[] after, String what, boolean whileRunning, long nanoTime) {

    /**
     * Copies the byte arrays, so the record stays immutable.
     *
     * @throws IllegalArgumentException if {@code before} and {@code after} differ in length
     */
    public Patch {
        before = before.clone();
        after = after.clone();
        if (before.length != after.length) {
            throw new IllegalArgumentException(before.length + " bytes before, " + after.length + " after");
        }
    }

    /** {@return a copy of the bytes there before the write} */
    @Override
    public byte[] before() {
        return before.clone();
    }

    /** {@return a copy of the bytes there after the write} */
    @Override
    public byte[] after() {
        return after.clone();
    }

    /** {@return the address, what was done, both byte strings in hex, and how it was written} */
    @Override
    public String toString() {
        return String.format("0x%x %s: [%s] -> [%s]%s", address, what, X86Code.hex(before), X86Code.hex(after),
                whileRunning ? " (atomic, running)" : " (at safepoint)");
    }
}
