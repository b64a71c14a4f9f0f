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
 * @param sections the sections the host placed in memory, in section header order
 * @param symbols the named symbols the object defines (no section or file symbols), at their
 *     absolute addresses
 * @param stackMapSection the relocated {@code .llvm_stackmaps} section in memory, when it has one:
 *     its FunctionAddress fields hold absolute addresses
 * @param stackMaps that section, parsed
 * @param lineTableProblem why the object's {@code .debug_line} could not be read, when it has one
 *     the host could not read: its functions then carry no {@link EmittedFunction#lines()}. A bad
 *     line table does not fail the load; it is a diagnostic, and listeners that use it say so
 */
public record LoadedObject(long key, String name, List<LoadedSection> sections, List<LoadedSymbol> symbols,
        Optional<MemorySegment> stackMapSection, Optional<StackMapSection> stackMaps, Optional<String> lineTableProblem) {

    /**
     * An object without a line table problem.
     *
     * @param key see the record's components
     * @param name the name the embedder gave the object
     * @param sections the sections the host placed in memory
     * @param symbols the named symbols the object defines
     * @param stackMapSection the relocated {@code .llvm_stackmaps} section, when it has one
     * @param stackMaps that section, parsed
     */
    public LoadedObject(long key, String name, List<LoadedSection> sections, List<LoadedSymbol> symbols,
            Optional<MemorySegment> stackMapSection, Optional<StackMapSection> stackMaps) {
        this(key, name, sections, symbols, stackMapSection, stackMaps, Optional.empty());
    }

    /** Copies {@code sections} and {@code symbols} into unmodifiable lists. */
    public LoadedObject {
        sections = List.copyOf(sections);
        symbols = List.copyOf(symbols);
    }

    /**
     * The loaded section named {@code name}, by linear search.
     *
     * @param name the exact section name, e.g. {@code .text}
     * @return the first loaded section of that name, or empty
     */
    public Optional<LoadedSection> section(String name) {
        return sections.stream().filter(s -> s.name().equals(name)).findFirst();
    }

    /**
     * The symbol named {@code name} that this object defines, by linear search.
     *
     * @param name the exact symbol name
     * @return the first symbol of that name (local or global), or empty
     */
    public Optional<LoadedSymbol> symbol(String name) {
        return symbols.stream().filter(s -> s.name().equals(name)).findFirst();
    }
}
