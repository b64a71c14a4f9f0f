package dev.safepointkit.events;

import dev.safepointkit.stackmap.StackMapSection;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Optional;

/**
 * An object file as a host loaded it: where its sections went, its symbols at their absolute
 * addresses, and its stack maps after relocation. Immutable; the memory it describes is valid
 * from {@link JitEventListener#objectLoaded} until {@link JitEventListener#objectFreeing} returns.
 *
 * @param key a key unique among the objects one host has loaded, never reused by it
 * @param name the name the embedder gave the object (for example its file name)
 * @param stackMapSection the relocated {@code .llvm_stackmaps} section in memory, when it has one:
 *     its FunctionAddress fields hold absolute addresses
 * @param stackMaps that section, parsed
 */
public record LoadedObject(long key, String name, List<LoadedSection> sections, List<LoadedSymbol> symbols,
        Optional<MemorySegment> stackMapSection, Optional<StackMapSection> stackMaps) {

    public LoadedObject {
        sections = List.copyOf(sections);
        symbols = List.copyOf(symbols);
    }

    /** The loaded section named {@code name}. */
    public Optional<LoadedSection> section(String name) {
        return sections.stream().filter(s -> s.name().equals(name)).findFirst();
    }

    /** The symbol named {@code name} that this object defines. */
    public Optional<LoadedSymbol> symbol(String name) {
        return symbols.stream().filter(s -> s.name().equals(name)).findFirst();
    }
}
