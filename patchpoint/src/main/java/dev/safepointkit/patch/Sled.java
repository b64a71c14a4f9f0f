package dev.safepointkit.patch;

/**
 * The bytes a patchpoint reserved: from the record's instruction offset, {@code length} bytes that
 * the runtime owns whole. LLVM allows no partial patching, so the patcher only ever writes a whole
 * sled: NOPs, or {@code movabs $target, %r11; call *%r11} followed by NOPs.
 *
 * @param address the sled's first byte
 * @param length the numBytes the patchpoint was compiled with
 * @param function the function that holds it
 * @param id the patchpoint's ID
 * @param objectKey the loaded object that holds it
 */
public record Sled(long address, int length, String function, long id, long objectKey) {

    /**
     * Checks the length.
     *
     * @throws IllegalArgumentException if {@code length} is not positive
     */
    public Sled {
        if (length <= 0) {
            throw new IllegalArgumentException("sled of " + length + " bytes");
        }
    }
}
