package dev.safepointkit.host;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSection;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One object's relocated {@code .eh_frame}, registered with the process unwinder (libgcc_s's
 * {@code __register_frame}), so that glibc's {@code backtrace()}, C++ exceptions and anything
 * else built on libgcc's {@code _Unwind_*} can cross the object's frames.
 *
 * <p>With libgcc, {@code __register_frame} takes the start of a whole {@code .eh_frame} section
 * that ends with a 4-byte zero terminator (the linker puts the terminator there: an object file
 * has none, so {@link ObjectLinker} lays out {@link #TERMINATOR_BYTES} zero bytes after the
 * section). libgcc keeps the pointer and reads the section whenever it searches for a PC, so the
 * section must stay mapped until {@link #deregister}: {@link JitObject#free} deregisters before it
 * unmaps, and so does every failed load after this registration. libgcc's
 * {@code __deregister_frame} aborts the process when given a section it does not know, so a
 * registration is deregistered exactly once, and only by this class.
 *
 * <p>{@link #register} fails closed: without libgcc_s, with a section that does not pass
 * {@link ObjectChecks#ehFrame}, or when the unwinder afterwards does not find each of the
 * section's FDEs where it begins (or finds another one there, a stale registration), it throws
 * and leaves nothing registered.
 *
 * <p>Threading: {@link #register} and {@link #deregister} are called under the host's lock (the
 * load and unload paths); libgcc serializes them against unwinding threads with its own mutex.
 * {@link #live} may be read from any thread.
 */
final class EhFrameRegistration {
    /** The name of the section registered. */
    static final String SECTION_NAME = ".eh_frame";
    /** The zero length word that ends a registered section, as libgcc reads it. */
    static final int TERMINATOR_BYTES = 4;
    /** An object without {@code .eh_frame}: nothing registered, nothing to deregister. */
    static final EhFrameRegistration NONE = new EhFrameRegistration(MemorySegment.NULL);

    private static final AtomicLong LIVE = new AtomicLong();

    private final MemorySegment section;
    /** Written only under the host's lock (see the class comment). */
    private boolean registered;

    private EhFrameRegistration(MemorySegment section) {
        this.section = section;
        this.registered = section.address() != 0;
    }

    /**
     * Registers the relocated {@code .eh_frame} of {@code linked}, if it has one.
     *
     * @return the registration to deregister before unmapping; {@link #NONE} without {@code .eh_frame}
     * @throws JitLoadException naming the object and why, with nothing registered
     */
    static EhFrameRegistration register(String object, ElfFile elf, ObjectLinker.Linked linked) throws JitLoadException {
        // The loaded one (ObjectChecks allows one): a section of that name that is not loaded has no address.
        Optional<ElfSection> found = elf.sections().stream()
                .filter(e -> e.name().equals(SECTION_NAME) && linked.sectionAddresses().containsKey(e.index())).findFirst();
        if (found.isEmpty()) {
            return NONE;
        }
        ElfSection s = found.get();
        long at = linked.sectionAddresses().get(s.index()) - linked.mapping().address();
        // The linker laid out the terminator after the section: ObjectChecks bounded both.
        MemorySegment withTerminator = linked.mapping().asSlice(at, s.size() + TERMINATOR_BYTES);
        List<ObjectChecks.Fde> fdes = ObjectChecks.ehFrame(object, withTerminator, linked.code());
        Unwinder unwinder = Unwinder.get(object);
        try {
            unwinder.register.invokeExact(withTerminator);
        } catch (Throwable t) {
            throw new JitLoadException(object + ": __register_frame failed for its .eh_frame: " + t, t);
        }
        LIVE.incrementAndGet();
        EhFrameRegistration registration = new EhFrameRegistration(withTerminator);
        try {
            registration.checkFound(object, unwinder, fdes);
        } catch (JitLoadException | RuntimeException | Error e) {
            // libgcc holds every section whose first word is not 0, which ObjectChecks made sure of:
            // deregistering is right even when it could not find the section's FDEs.
            registration.deregister();
            throw e;
        }
        return registration;
    }

    /**
     * The unwinder must now find each FDE of the section for the address it begins at, and find
     * exactly that FDE: otherwise libgcc did not take the section, another registration (a stale
     * one) covers the object's code, or two FDEs of the section cover one address.
     */
    private void checkFound(String object, Unwinder unwinder, List<ObjectChecks.Fde> fdes) throws JitLoadException {
        try (Arena bases = Arena.ofConfined()) {
            // struct dwarf_eh_bases { void *tbase, *dbase, *func; }
            MemorySegment out = bases.allocate(3 * ValueLayout.ADDRESS.byteSize());
            for (ObjectChecks.Fde fde : fdes) {
                if (fde.range() == 0) {
                    continue;   // describes no address; libgcc never returns it
                }
                long expected = section.address() + fde.offset();
                long found = unwinder.findFde(fde.begin(), out);
                if (found != expected) {
                    throw new JitLoadException(object + ": after __register_frame the unwinder finds 0x"
                            + Long.toHexString(fde.begin()) + " in " + (found == 0 ? "no FDE" : "the FDE at 0x"
                            + Long.toHexString(found)) + ", not in the FDE at offset 0x" + Long.toHexString(fde.offset())
                            + " of its .eh_frame (0x" + Long.toHexString(expected) + ")"
                            + (found == 0 ? ""
                                    : Long.compareUnsigned(found - section.address(), section.byteSize()) < 0
                                            ? ": another FDE of its own .eh_frame covers that address"
                                            : ": another registration covers its code"));
                }
            }
        }
    }

    /**
     * Removes the registration; the section must still be mapped. Called once, under the host's
     * lock, before the object is unmapped.
     *
     * @throws IllegalStateException if already deregistered (libgcc would abort the process)
     */
    void deregister() {
        if (section.address() == 0) {
            return;
        }
        if (!registered) {
            throw new IllegalStateException("the .eh_frame at 0x" + Long.toHexString(section.address())
                    + " is already deregistered");
        }
        try {
            // INSTANCE is set: the section was registered through it.
            Unwinder.INSTANCE.deregister.invokeExact(section);
        } catch (Throwable t) {
            throw new IllegalStateException("__deregister_frame failed for the .eh_frame at 0x"
                    + Long.toHexString(section.address()) + ": " + t, t);
        }
        registered = false;
        LIVE.decrementAndGet();
    }

    /** {@return registrations made and not yet deregistered, in this process} */
    static long live() {
        return LIVE.get();
    }

    /** libgcc_s's registration entry points, looked up once per process. */
    private static final class Unwinder {
        private static final String LIBRARY = "libgcc_s.so.1";
        private static final Unwinder INSTANCE;
        private static final String FAILURE;

        static {
            Unwinder u = null;
            String failure = null;
            try {
                // The same library (by soname) that glibc's backtrace() opens and libstdc++ links:
                // one unwinder, one list of registered sections, for the whole process.
                SymbolLookup lib = SymbolLookup.libraryLookup(LIBRARY, Arena.global());
                Linker linker = Linker.nativeLinker();
                FunctionDescriptor takesPointer = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS);
                u = new Unwinder(linker.downcallHandle(lib.findOrThrow("__register_frame"), takesPointer),
                        linker.downcallHandle(lib.findOrThrow("__deregister_frame"), takesPointer),
                        linker.downcallHandle(lib.findOrThrow("_Unwind_Find_FDE"),
                                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS)));
            } catch (RuntimeException e) {
                failure = e.toString();
            }
            INSTANCE = u;
            FAILURE = failure;
        }

        final MethodHandle register;
        final MethodHandle deregister;
        private final MethodHandle findFde;

        private Unwinder(MethodHandle register, MethodHandle deregister, MethodHandle findFde) {
            this.register = register;
            this.deregister = deregister;
            this.findFde = findFde;
        }

        static Unwinder get(String object) throws JitLoadException {
            if (INSTANCE == null) {
                throw new JitLoadException(object + ": cannot register its .eh_frame: "
                        + LIBRARY + " (the process unwinder) is not available: " + FAILURE);
            }
            return INSTANCE;
        }

        /** {@code _Unwind_Find_FDE(pc, bases)}: the FDE covering {@code pc}, 0 if none. */
        long findFde(long pc, MemorySegment bases) {
            try {
                return (long) findFde.invokeExact(pc, bases);
            } catch (Throwable t) {
                throw new IllegalStateException("_Unwind_Find_FDE failed: " + t, t);
            }
        }
    }
}
