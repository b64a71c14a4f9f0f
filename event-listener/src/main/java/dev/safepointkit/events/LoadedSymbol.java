package dev.safepointkit.events;

/**
 * A symbol defined by a loaded object, at its absolute address.
 *
 * @param name the symbol's name, never empty
 * @param address its absolute address once loaded
 * @param size its size in bytes ({@code st_size}), 0 when unknown
 * @param function whether it names a function ({@code STT_FUNC})
 * @param global whether other objects may link to it (global or weak binding)
 */
public record LoadedSymbol(String name, long address, long size, boolean function, boolean global) {
}
