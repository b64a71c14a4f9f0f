package dev.safepointkit.events;

/**
 * One row of an object's DWARF line table ({@code .debug_line}): from {@code address} on, the
 * code comes from {@code line} of {@code file}, until the next row. Immutable.
 *
 * @param address absolute address, where the code was loaded
 * @param file the source file's name, joined to its include directory when that is given and the
 *     name is relative (for example {@code fixtures/jit/src/debug.ll})
 * @param line the 1-based source line, 0 for code that belongs to no line
 * @param discriminator the DWARF discriminator, 0 when none was given
 */
public record SourceLine(long address, String file, int line, int discriminator) {
}
