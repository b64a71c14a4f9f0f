package dev.safepointkit.events;

/**
 * A section of a loaded object and where it was placed.
 *
 * @param address the absolute address of its first byte
 * @param executable whether it was mapped executable (code); never also writable
 */
public record LoadedSection(String name, long address, long size, boolean executable, boolean writable) {

    /** Whether {@code pc} falls inside this section. */
    public boolean contains(long pc) {
        return Long.compareUnsigned(pc - address, size) < 0;
    }
}
