package dev.safepointkit.host;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.internal.Libc;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Optional;
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
    private final EhFrameRegistration ehFrames;
    private final GdbJitRegistration debugger;
    private final Set<String> definedGlobals;
    private final Set<String> referencedSymbols;

    JitObject(LoadedObject loaded, List<EmittedFunction> functions, ObjectLinker.Linked linked, EhFrameRegistration ehFrames,
            GdbJitRegistration debugger, Set<String> definedGlobals, Set<String> referencedSymbols) {
        this.loaded = loaded;
        this.functions = List.copyOf(functions);
        this.mapping = linked.mapping();
        this.linked = linked;
        this.ehFrames = ehFrames;
        this.debugger = debugger;
        this.definedGlobals = Set.copyOf(definedGlobals);
        this.referencedSymbols = Set.copyOf(referencedSymbols);
    }

    /**
     * The object's key, unique in its host for the host's life (keys are not reused).
     *
     * @return the key, at least 1, as listeners and {@link CallSite#objectKey} name it
     */
    public long key() {
        return loaded.key();
    }

    /**
     * The object's name, as given to {@link JitHost#load}.
     *
     * @return the name errors and listeners use
     */
    public String name() {
        return loaded.name();
    }

    /** {@return what listeners were told in objectLoaded} */
    public LoadedObject loaded() {
        return loaded;
    }

    /** {@return what listeners were told in functionEmitted, in address order; immutable} */
    public List<EmittedFunction> functions() {
        return functions;
    }

    /**
     * The whole mapping: code, data, GOT and far-call trampolines. Like every segment the object's events carry,
     * it is scoped to the object: after unload, accessing it throws IllegalStateException.
     *
     * @return the mapping; each group has its own protection (code read + execute, read-only data
     *     and the GOT read, data read + write)
     */
    public MemorySegment mapping() {
        return mapping;
    }

    /** The code group, read + execute, scoped like {@link #mapping}; empty when the object has no code. */
    MemorySegment code() {
        MemorySegment code = linked.code();
        return code.byteSize() == 0 ? MemorySegment.NULL : mapping.asSlice(code.address() - mapping.address(), code.byteSize());
    }

    /**
     * The writable alias of the code starting at {@code address}, {@code length} bytes, if they lie
     * in this object's code; scoped to the object like {@link #mapping}, so a write after unload
     * throws IllegalStateException instead of reaching freed memory.
     */
    Optional<MemorySegment> codeAlias(long address, long length) {
        MemorySegment code = linked.code();
        long offset = address - code.address();
        if (code.byteSize() == 0 || offset < 0 || length < 0 || offset > code.byteSize() - length) {
            return Optional.empty();
        }
        return Optional.of(linked.codeAlias().asSlice(offset, length));
    }

    /**
     * Unregisters the object from debuggers (the GDB JIT interface), then deregisters its
     * {@code .eh_frame} from the process unwinder (which reads it until then): the reverse of
     * the order the load registered them in. Then it closes the object's scope, then unmaps its memory and its code alias: listeners have
     * already been told. Closing the shared arena first means a writer still holding an alias
     * segment fails on its next access rather than writing into unmapped (or reused) memory.
     */
    void free() {
        debugger.unregister();
        ehFrames.deregister();
        linked.arena().close();
        Libc.munmap(linked.raw());
        if (linked.rawCodeAlias().byteSize() > 0) {
            Libc.munmap(linked.rawCodeAlias());
        }
    }

    /** {@return the global symbols this object defines (others may link to them); immutable} */
    public Set<String> definedGlobals() {
        return definedGlobals;
    }

    /** {@return the names its relocations refer to (its own symbols included); immutable} */
    public Set<String> referencedSymbols() {
        return referencedSymbols;
    }

    @Override
    public String toString() {
        return "JitObject[" + key() + ", " + name() + "]";
    }
}
