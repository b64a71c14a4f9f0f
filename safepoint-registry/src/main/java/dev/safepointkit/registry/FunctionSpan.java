package dev.safepointkit.registry;

/**
 * A function of registered code: where it starts, how many bytes it has, its name.
 *
 * @param start absolute address of its first instruction
 */
public record FunctionSpan(String name, long start, long size) {
}
