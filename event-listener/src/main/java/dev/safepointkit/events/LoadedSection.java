package dev.safepointkit.events;

/**
 * A section of a loaded object and where it was placed.
 *
 * @param name the section's name in the object file
 * @param address the absolute address of its first byte
 * @param size its size in bytes ({@code sh_size})
 * @param executable whether it was mapped executable (code); never also writable
 * @param writable whether it was mapped writable (data)
 */
public record LoadedSection(String name, long address, long size, boolean executable, boolean writable) {

    /**
     * Whether {@code pc} falls inside this section.
     *
     * @param pc an absolute address
     * @return true when {@code address <= pc < address + size}, compared unsigned
     */
    public boolean contains(long pc) {
        return Long.compareUnsigned(pc - address, size) < 0;
    }
}
