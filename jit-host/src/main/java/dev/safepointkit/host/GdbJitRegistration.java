package dev.safepointkit.host;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSection;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * One loaded object made known to gdb through the GDB JIT interface: an in-memory copy of the
 * object file (the symfile) whose every loaded section's {@code sh_addr} is where the host placed
 * it, linked into the list of {@code __jit_debug_descriptor} with {@code JIT_REGISTER_FN}.
 *
 * <p>From that copy gdb reads everything as if the object had been linked at those addresses: its
 * symbols (an ELF relocatable file's {@code st_value} is relative to its section, so gdb adds the
 * section's {@code sh_addr}), its {@code .eh_frame} and, when the IR had {@code -g}, its debug
 * sections. The copy keeps the object's {@code .rela.*} sections, which gdb applies to the debug
 * sections and {@code .eh_frame} it reads from a relocatable file, as LLVM's own registration
 * (RuntimeDyld's debug object) relies on.
 *
 * <p>The descriptor and {@code __jit_debug_register_code} live in a small native library of the
 * project ({@code src/main/c/gdb_jit.c}, built into this module's jar), not in memory the host
 * maps itself, because gdb looks both up by name in the objects the dynamic loader loaded. gdb 10
 * and later track the descriptor of every object file that defines those symbols, so the
 * project's list and libLLVM's (libLLVM 19 exports its own, which its ORC and MCJIT listeners
 * update under a lock the host cannot take) coexist whether or not libLLVM is loaded, and neither
 * is updated under the other's lock.
 *
 * <p>{@link #unregister} unlinks the entry with {@code JIT_UNREGISTER_FN} and only then frees the
 * copy: gdb may read it until it has been told the entry is gone.
 *
 * <p>Threading: {@link #register} and {@link #unregister} are called under the host's lock (the
 * load and unload paths); the native library changes the list and calls gdb's breakpoint under
 * one process-wide mutex, so hosts on other threads (and in other class loaders) keep one
 * consistent list. {@link #entries} takes the same mutex and may be called from any thread.
 */
final class GdbJitRegistration {
    private static final String LIBRARY = "native/libsafepointkit-gdbjit.so";
    /** {@code struct jit_code_entry}: next, prev, symfile_addr, symfile_size. */
    private static final long ENTRY_SIZE = 32;
    private static final long SYMFILE_ADDR = 16;
    private static final long SYMFILE_SIZE = 24;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG;

    /** Owns the entry and the symfile; closed by {@link #unregister}, after gdb was told. */
    private final Arena arena;
    private final MemorySegment entry;
    /** Written only under the host's lock (see the class comment). */
    private boolean registered = true;

    private GdbJitRegistration(Arena arena, MemorySegment entry) {
        this.arena = arena;
        this.entry = entry;
    }

    /**
     * Builds the symfile of {@code linked} and registers it with the debugger.
     *
     * @param object the object's name, for errors
     * @param elf the object as loaded (its image is copied)
     * @param linked where its sections went
     * @return the registration to undo before the object is unmapped
     * @throws JitLoadException naming the object when the interface's library cannot be loaded;
     *     then nothing is registered
     */
    static GdbJitRegistration register(String object, ElfFile elf, ObjectLinker.Linked linked) throws JitLoadException {
        Native lib = Native.get(object);
        Arena arena = Arena.ofShared();
        try {
            MemorySegment image = elf.image();
            MemorySegment symfile = arena.allocate(image.byteSize(), 16);
            MemorySegment.copy(image, 0, symfile, 0, image.byteSize());
            ValueLayout.OfLong addressField = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(elf.byteOrder());
            for (ElfSection s : elf.sections()) {
                Long address = linked.sectionAddresses().get(s.index());
                if (address != null) {
                    symfile.set(addressField, elf.sectionAddressFieldOffset(s), address);
                }
            }
            MemorySegment entry = arena.allocate(ENTRY_SIZE, 8);
            entry.set(U64, SYMFILE_ADDR, symfile.address());
            entry.set(U64, SYMFILE_SIZE, symfile.byteSize());
            lib.call(lib.register, entry);
            return new GdbJitRegistration(arena, entry);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Unlinks the entry (gdb drops the object's symbols), then frees the symfile. Called once,
     * under the host's lock.
     *
     * @throws IllegalStateException if already unregistered
     */
    void unregister() {
        if (!registered) {
            throw new IllegalStateException("the GDB JIT entry at 0x" + Long.toHexString(entry.address())
                    + " is already unregistered");
        }
        // INSTANCE is set: the entry was registered through it.
        Native.INSTANCE.call(Native.INSTANCE.unregister, entry);
        registered = false;
        arena.close();
    }

    /**
     * The entries linked now, in list order (the newest first), as {symfile address, symfile size}
     * pairs, read under the library's mutex. Any thread.
     *
     * @throws JitLoadException if the interface's library cannot be loaded
     */
    static List<long[]> entries() throws JitLoadException {
        Native lib = Native.get("the GDB JIT list");
        try (Arena scratch = Arena.ofConfined()) {
            for (int capacity = 64; ; capacity *= 4) {
                MemorySegment out = scratch.allocate(ValueLayout.JAVA_LONG, 2L * capacity);
                long n;
                try {
                    n = (long) lib.snapshot.invokeExact(out, (long) capacity);
                } catch (Throwable t) {
                    throw new IllegalStateException("reading the GDB JIT list failed: " + t, t);
                }
                if (n <= capacity) {
                    List<long[]> pairs = new ArrayList<>();
                    for (int i = 0; i < n; i++) {
                        pairs.add(new long[] {out.getAtIndex(ValueLayout.JAVA_LONG, 2L * i),
                            out.getAtIndex(ValueLayout.JAVA_LONG, 2L * i + 1)});
                    }
                    return pairs;
                }
            }
        }
    }

    /** The interface's library, extracted from the jar and loaded once per process (per class loader). */
    private static final class Native {
        private static final Native INSTANCE;
        private static final String FAILURE;

        static {
            Native n = null;
            String failure = null;
            try {
                n = load();
            } catch (IOException | RuntimeException e) {
                failure = e.toString();
            }
            INSTANCE = n;
            FAILURE = failure;
        }

        final MethodHandle register;
        final MethodHandle unregister;
        final MethodHandle snapshot;

        private Native(MethodHandle register, MethodHandle unregister, MethodHandle snapshot) {
            this.register = register;
            this.unregister = unregister;
            this.snapshot = snapshot;
        }

        private static Native load() throws IOException {
            SymbolLookup lib = BundledLibrary.load(LIBRARY, "safepointkit-gdbjit-");
            Linker linker = Linker.nativeLinker();
            FunctionDescriptor takesEntry = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS);
            return new Native(linker.downcallHandle(lib.findOrThrow("safepointkit_gdb_jit_register"), takesEntry),
                    linker.downcallHandle(lib.findOrThrow("safepointkit_gdb_jit_unregister"), takesEntry),
                    linker.downcallHandle(lib.findOrThrow("safepointkit_gdb_jit_snapshot"),
                            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG)));
        }

        static Native get(String object) throws JitLoadException {
            if (INSTANCE == null) {
                throw new JitLoadException(object + ": cannot register it with debuggers (the GDB JIT interface): " + FAILURE);
            }
            return INSTANCE;
        }

        void call(MethodHandle function, MemorySegment entry) {
            try {
                function.invokeExact(entry);
            } catch (Throwable t) {
                throw new IllegalStateException("the GDB JIT interface failed for the entry at 0x"
                        + Long.toHexString(entry.address()) + ": " + t, t);
            }
        }
    }
}
