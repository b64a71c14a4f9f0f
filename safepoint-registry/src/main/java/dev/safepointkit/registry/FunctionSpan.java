package dev.safepointkit.registry;

/**
 * A function of registered code: where it starts, how many bytes it has, its name.
 *
 * @param name its symbol name, or null when it is not known
 * @param start absolute address of its first instruction
 * @param size its size in bytes ({@code st_size}), or 0 when not known: the registry then takes
 *     it to reach the next function or the end of the code
 */
public record FunctionSpan(String name, long start, long size) {
}
