package dev.safepointkit.host;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.LoadedObject;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Set;

/**
 * An object loaded by a {@link JitHost}: what listeners heard of it, and what the host needs to
 * unload it. Immutable; valid until it is unloaded.
 */
public final class JitObject {
    private final LoadedObject loaded;
    private final List<EmittedFunction> functions;
    private final MemorySegment mapping;
    private final ObjectLinker.Linked linked;
    private final Set<String> definedGlobals;
    private final Set<String> referencedSymbols;

    JitObject(LoadedObject loaded, List<EmittedFunction> functions, ObjectLinker.Linked linked, Set<String> definedGlobals,
            Set<String> referencedSymbols) {
        this.loaded = loaded;
        this.functions = List.copyOf(functions);
        this.mapping = linked.mapping();
        this.linked = linked;
        this.definedGlobals = Set.copyOf(definedGlobals);
        this.referencedSymbols = Set.copyOf(referencedSymbols);
    }

    public long key() {
        return loaded.key();
    }

    public String name() {
        return loaded.name();
    }

    /** What listeners were told in objectLoaded. */
    public LoadedObject loaded() {
        return loaded;
    }

    /** What listeners were told in functionEmitted, in address order. */
    public List<EmittedFunction> functions() {
        return functions;
    }

    /**
     * The whole mapping: code, data, GOT and stubs. Like every segment the object's events carry,
     * it is scoped to the object: after unload, accessing it throws IllegalStateException.
     */
    public MemorySegment mapping() {
        return mapping;
    }

    /** Closes the object's scope, then unmaps its memory: listeners have already been told. */
    void free() {
        linked.arena().close();
        dev.safepointkit.events.internal.Libc.munmap(linked.raw());
    }

    /** The global symbols this object defines (others may link to them). */
    public Set<String> definedGlobals() {
        return definedGlobals;
    }

    /** The names its relocations refer to (its own symbols included). */
    public Set<String> referencedSymbols() {
        return referencedSymbols;
    }

    @Override
    public String toString() {
        return "JitObject[" + key() + ", " + name() + "]";
    }
}
