package dev.safepointkit.patch;

import dev.safepointkit.events.internal.Libc;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * A block of {@link #CAPACITY} stubs in a mapping of its own: one read-execute page of code, one
 * read-write page of pointer slots. The code page comes from a memory file, mapped read + execute
 * in place and, while the block is built, read + write at another address, through which the code
 * is written once; that alias is unmapped before the constructor returns, so the block's code is
 * never writable at any address afterwards, and never was where it runs. Every change afterwards
 * is an atomic store into a slot, which is data.
 *
 * <pre>
 * code page   0     reentry: saves the argument registers, calls the resolver upcall with the
 *                   stub's id (in r11), restores them and jumps to the address it returned
 *             192   cpuid probe: {@code long cpuid(int leaf, int subleaf)}, and
 *             224   xgetbv probe: {@code long xcr0()}, run while the process's first block is
 *                   built to choose and size the reentry's save area (later blocks reuse the
 *                   answer: cpuid traps to the hypervisor in a virtual machine, and neither the
 *                   processor nor XCR0 changes under a running process)
 *             256   stub i:        jmp *slot_i(%rip)                   8 bytes each
 *             1280  lazy entry i:  movabs $id_i, %r11; jmp reentry    16 bytes each
 * slot page   0     slot i: 8 bytes, the stub's current target (at first its lazy entry)
 * </pre>
 */
final class StubBlock {
    static final int CAPACITY = 128;
    static final int STUB_SIZE = 8;
    private static final int PROBE = 192;
    private static final int XCR0_PROBE = 224;
    private static final int STUBS = 256;
    private static final int LAZY_ENTRY_SIZE = 16;
    private static final int LAZY_ENTRIES = STUBS + CAPACITY * STUB_SIZE;

    /** What the first block's probes found; racing first blocks each probe and find the same. */
    private static volatile ExtendedState probed;
    /** How many times the probes ran in this process, for tests. */
    static final java.util.concurrent.atomic.AtomicInteger PROBES = new java.util.concurrent.atomic.AtomicInteger();

    private final MemorySegment mapping;
    /**
     * The slot page, scoped to {@link #slotScope}: a read or store racing {@link #free} either
     * completes before the page is unmapped or fails with {@link IllegalStateException}; closing a
     * shared arena waits out every access in flight.
     */
    private final MemorySegment slots;
    private final Arena slotScope = Arena.ofShared();
    private final long firstId;
    private final ExtendedState state;
    /** Set before the unmap; only for {@link #isFreed}: the scope, not this flag, guards the slots. */
    private volatile boolean freed;

    /**
     * @param firstId the id of the block's first stub; stub i passes {@code firstId + i} to the resolver
     * @param resolver the address of a C function {@code long resolve(long id)} that returns where
     *     the stub's call continues
     */
    StubBlock(long firstId, long resolver) {
        long page = Libc.pageSize();
        if (LAZY_ENTRIES + CAPACITY * LAZY_ENTRY_SIZE > page || CAPACITY * 8 > page) {
            throw new IllegalStateException("page size " + page + " is too small for a stub block");
        }
        this.firstId = firstId;
        // Two pages together, so that the stubs reach their slots with a rel32; then the first page
        // is replaced by the memory file's, read + execute, and its alias is where the code is written.
        MemorySegment raw = Libc.mmap(2 * page, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
        MemorySegment alias;
        try {
            int fd = Libc.memfdCreate("safepointkit-stubs", page);
            try {
                Libc.mmapFixed(raw.address(), page, Libc.PROT_READ | Libc.PROT_EXEC, Libc.MAP_SHARED, fd, 0);
                alias = Libc.mmap(page, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
            } finally {
                Libc.close(fd);   // the mappings keep the file
            }
        } catch (RuntimeException e) {
            Libc.munmap(raw);
            throw e;
        }
        this.mapping = raw;
        // The slot page is the second of the two pages mapped above, so its size is one page.
        this.slots = MemorySegment.ofAddress(raw.address() + page).reinterpret(page, slotScope, null);
        try {
            ExtendedState known = probed;
            this.state = known != null ? known : (probed = extendedState(alias));
            writeCode(alias, resolver, state);
        } catch (RuntimeException | Error e) {
            slotScope.close();
            Libc.munmap(alias);
            Libc.munmap(raw);
            throw e;
        }
        Libc.munmap(alias);
        for (int i = 0; i < CAPACITY; i++) {
            setTarget(i, lazyEntry(i));
        }
    }

    /**
     * What the reentry saves with {@code xsavec}: the state components that hold argument
     * registers ({@code mask}) and the bytes of their compacted save area ({@code size}).
     *
     * @param mask the requested-feature bitmap of {@code xsavec} and {@code xrstor}
     * @param size the save area's size in the compacted format, legacy region and header included
     */
    record ExtendedState(long mask, long size) {
        /** SSE: xmm0-15 and MXCSR, in the legacy region. */
        static final int SSE = 1;
        /** AVX: the upper halves of ymm0-15. */
        static final int AVX = 2;
        /** ZMM_Hi256: the upper 256 bits of zmm0-15. */
        static final int ZMM_HI256 = 6;
        /**
         * The components SysV passes arguments in (xmm0-7, ymm0-7, zmm0-7). Not x87 (long double
         * goes on the stack), not the opmask registers or zmm16-31 (no argument uses them, and the
         * callee may clobber them anyway), never AMX tiles (XFD may arm them to fault, and their
         * 8 KiB would be saved for nothing).
         */
        static final long ARGUMENT_COMPONENTS = 1L << SSE | 1L << AVX | 1L << ZMM_HI256;
        /** The legacy region (512 bytes) and the XSAVE header (64): where the compacted area starts. */
        static final long LEGACY_AND_HEADER = 576;

        /** Whether the reentry saves component {@code i}. */
        boolean saves(int i) {
            return (mask & 1L << i) != 0;
        }
    }

    /** {@return what the reentry of this block saves} */
    ExtendedState extendedState() {
        return state;
    }

    /**
     * The argument components the OS enabled (XCR0, from {@code xgetbv 0}) and the size
     * {@code xsavec} writes for them: 576 bytes, then each component above SSE in ascending order,
     * its size from CPUID leaf 0xD sub-leaf i (EAX), placed at the next 64-byte boundary when that
     * sub-leaf's ECX bit 1 asks for it. Both run through probes written into the block for the
     * purpose.
     *
     * @throws IllegalStateException if the processor has no XSAVEC, or the OS enabled no SSE state
     */
    private ExtendedState extendedState(MemorySegment code) {
        PROBES.incrementAndGet();
        MemorySegment.copy(MemorySegment.ofArray(CPUID_PROBE), 0, code, PROBE, CPUID_PROBE.length);
        MemorySegment.copy(MemorySegment.ofArray(XCR0_PROBE_CODE), 0, code, XCR0_PROBE, XCR0_PROBE_CODE.length);
        Linker linker = Linker.nativeLinker();
        MethodHandle cpuid = linker.downcallHandle(MemorySegment.ofAddress(mapping.address() + PROBE),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        MethodHandle xcr0 = linker.downcallHandle(MemorySegment.ofAddress(mapping.address() + XCR0_PROBE),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG));
        try {
            // xgetbv faults unless the OS enabled XSAVE, and leaf 0xD is garbage above the max leaf.
            requireXsaveEnabled((long) cpuid.invokeExact(0, 0), (long) cpuid.invokeExact(1, 0));
            long xsaveFeatures = (long) cpuid.invokeExact(0xD, 1);
            if ((xsaveFeatures & 0b10) == 0) {
                throw new IllegalStateException("lazy entries save the argument registers at full width with xsavec,"
                        + " which this processor lacks (CPUID.(EAX=0DH,ECX=1):EAX[1] is 0)");
            }
            long mask = (long) xcr0.invokeExact() & ExtendedState.ARGUMENT_COMPONENTS;
            if ((mask & 1L << ExtendedState.SSE) == 0) {
                throw new IllegalStateException("XCR0 does not enable SSE state: xsavec would not save xmm0-7");
            }
            long size = ExtendedState.LEGACY_AND_HEADER;
            for (int i = ExtendedState.AVX; i < 64; i++) {
                if ((mask & 1L << i) != 0) {
                    long leaf = (long) cpuid.invokeExact(0xD, i);
                    long componentSize = leaf & 0xFFFF_FFFFL;
                    if ((leaf >>> 32 & 0b10) != 0) {
                        size = (size + 63) / 64 * 64;
                    }
                    if (componentSize == 0 || componentSize > 1 << 16) {
                        throw new IllegalStateException("CPUID leaf 0xD reports " + componentSize
                                + " bytes for state component " + i);
                    }
                    size += componentSize;
                }
            }
            return new ExtendedState(mask, size);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("running the cpuid probe", t);
        }
    }

    /** {@code long cpuid(int leaf, int subleaf)}: returns ecx in the high half, eax in the low half. */
    private static final byte[] CPUID_PROBE = {
        0x53,                                       // push %rbx (cpuid writes it; callee-saved)
        (byte) 0x89, (byte) 0xF8,                   // mov %edi,%eax
        (byte) 0x89, (byte) 0xF1,                   // mov %esi,%ecx
        0x0F, (byte) 0xA2,                          // cpuid
        0x48, (byte) 0xC1, (byte) 0xE1, 0x20,       // shl $32,%rcx
        (byte) 0x89, (byte) 0xC0,                   // mov %eax,%eax
        0x48, 0x09, (byte) 0xC8,                    // or %rcx,%rax
        0x5B,                                       // pop %rbx
        (byte) 0xC3,                                // ret
    };

    /**
     * Refuses, with a clear error instead of a SIGILL in {@code xgetbv} or sizes read from a leaf
     * that does not exist, a processor or OS without what the reentry's {@code xsavec} needs.
     *
     * @param leaf0 CPUID leaf 0 as the probe returns it (ecx in the high half, eax in the low)
     * @param leaf1 CPUID leaf 1, likewise
     * @throws IllegalStateException if the maximum basic leaf is below 0xD or CPUID.1:ECX.OSXSAVE is 0
     */
    static void requireXsaveEnabled(long leaf0, long leaf1) {
        long maxLeaf = leaf0 & 0xFFFF_FFFFL;
        if (maxLeaf < 0xD) {
            throw new IllegalStateException(String.format("lazy entries size the saved argument registers by CPUID"
                    + " leaf 0xD, which this processor lacks (its maximum basic leaf is 0x%x)", maxLeaf));
        }
        if ((leaf1 >>> 32 & 1L << 27) == 0) {
            throw new IllegalStateException("lazy entries save the argument registers with xsavec, which the OS has"
                    + " not enabled (CPUID.1:ECX.OSXSAVE[bit 27] is 0; xgetbv would fault)");
        }
    }

    /** {@code long xcr0()}: {@code xgetbv} with ecx 0, edx:eax as one value. */
    private static final byte[] XCR0_PROBE_CODE = {
        0x31, (byte) 0xC9,                          // xor %ecx,%ecx
        0x0F, 0x01, (byte) 0xD0,                    // xgetbv
        0x48, (byte) 0xC1, (byte) 0xE2, 0x20,       // shl $32,%rdx
        (byte) 0x89, (byte) 0xC0,                   // mov %eax,%eax
        0x48, 0x09, (byte) 0xD0,                    // or %rdx,%rax
        (byte) 0xC3,                                // ret
    };

    /** The reentry, the stubs and the lazy entries, written through {@code code}, the alias of the code page. */
    private void writeCode(MemorySegment code, long resolver, ExtendedState saved) {
        long base = mapping.address();
        byte[] reentry = reentry(resolver, saved);
        code.asSlice(0, PROBE).fill((byte) 0xCC);  // int3 between the pieces
        code.asSlice(STUBS).fill((byte) 0xCC);
        MemorySegment.copy(MemorySegment.ofArray(reentry), 0, code, 0, reentry.length);
        for (int i = 0; i < CAPACITY; i++) {
            long stub = stubAddress(i);
            byte[] jmp = {(byte) 0xFF, 0x25, 0, 0, 0, 0};
            X86Code.putInt(jmp, 2, Math.toIntExact(slotAddress(i) - (stub + 6)));
            MemorySegment.copy(MemorySegment.ofArray(jmp), 0, code, STUBS + (long) i * STUB_SIZE, jmp.length);

            long entry = lazyEntry(i);
            byte[] lazy = new byte[15];
            lazy[0] = 0x49;
            lazy[1] = (byte) 0xBB;
            X86Code.putLong(lazy, 2, firstId + i);
            lazy[10] = (byte) X86Code.JMP_REL32;
            X86Code.putInt(lazy, 11, Math.toIntExact(base - (entry + 15)));
            MemorySegment.copy(MemorySegment.ofArray(lazy), 0, code, LAZY_ENTRIES + (long) i * LAZY_ENTRY_SIZE, lazy.length);
        }
    }

    long firstId() {
        return firstId;
    }

    long stubAddress(int i) {
        return mapping.address() + STUBS + (long) i * STUB_SIZE;
    }

    long lazyEntry(int i) {
        return mapping.address() + LAZY_ENTRIES + (long) i * LAZY_ENTRY_SIZE;
    }

    long slotAddress(int i) {
        return slots.address() + 8L * i;
    }

    /** Retargets stub {@code i}: one atomic 8-byte store, safe while other threads call it. */
    void setTarget(int i, long target) {
        try {
            ValueLayout.JAVA_LONG.varHandle().setVolatile(slots, 8L * i, target);
        } catch (IllegalStateException closed) {
            throw freedError(closed);
        }
    }

    long target(int i) {
        try {
            return (long) ValueLayout.JAVA_LONG.varHandle().getVolatile(slots, 8L * i);
        } catch (IllegalStateException closed) {
            throw freedError(closed);
        }
    }

    /** Whether {@code address} is one of this block's stubs. */
    boolean holdsStub(long address) {
        long first = stubAddress(0);
        return address >= first && address < first + (long) CAPACITY * STUB_SIZE && (address - first) % STUB_SIZE == 0;
    }

    /** Unmaps the block once every Java access to its slots in flight is over; later ones fail. */
    void free() {
        freed = true;
        slotScope.close();
        Libc.munmap(mapping);
    }

    boolean isFreed() {
        return freed;
    }

    private static IllegalStateException freedError(IllegalStateException closed) {
        return new IllegalStateException("the stubs are freed: their code patcher is closed", closed);
    }

    /**
     * The reentry trampoline. Entered by a jump from a lazy entry, so the stack is as the caller
     * left it at its call: the return address on top, stack arguments above. Every register that
     * can carry an argument is saved at full width: rdi, rsi, rdx, rcx, r8, r9, rax (varargs), r10
     * (the static chain) by pushes, and the extended state components that hold vector arguments
     * ({@code saved.mask()}: xmm, and ymm and zmm where enabled; SysV passes {@code __m256} in
     * ymm0-7 and {@code __m512} in zmm0-7) with {@code xsavec} into a 64-byte aligned area of
     * {@code saved.size()} bytes, as glibc's {@code _dl_runtime_resolve_xsavec} does. Then {@code resolve(r11)} is called on that 64-byte
     * aligned stack, everything is restored ({@code xrstor}) and the code jumps to the address it
     * returned. rbx is saved too: it is callee-saved, and the area's size is subtracted through it.
     */
    static byte[] reentry(long resolver, ExtendedState saved) {
        long area = (saved.size() + 63) / 64 * 64;
        byte[] mask = componentMask(saved.mask());
        ByteArrayOutputStream c = new ByteArrayOutputStream();
        c.writeBytes(new byte[] {0x55});                            // push %rbp
        c.writeBytes(new byte[] {0x48, (byte) 0x89, (byte) 0xE5});  // mov %rsp,%rbp
        c.writeBytes(new byte[] {0x57, 0x56, 0x52, 0x51});          // push %rdi, %rsi, %rdx, %rcx
        c.writeBytes(new byte[] {0x41, 0x50, 0x41, 0x51});          // push %r8, %r9
        c.writeBytes(new byte[] {0x50, 0x41, 0x52, 0x53});          // push %rax, %r10, %rbx
        byte[] sub = {0x48, (byte) 0x81, (byte) 0xEC, 0, 0, 0, 0};  // sub $area,%rsp
        X86Code.putInt(sub, 3, Math.toIntExact(area));
        c.writeBytes(sub);
        c.writeBytes(new byte[] {0x48, (byte) 0x83, (byte) 0xE4, (byte) 0xC0});  // and $-64,%rsp
        // xsavec leaves parts of the 64-byte XSAVE header at offset 512 unwritten, and xrstor
        // faults on nonzero reserved bytes there: clear it first, with a general register only.
        c.writeBytes(new byte[] {0x31, (byte) 0xC0});               // xor %eax,%eax
        for (int q = 0; q < 8; q++) {                               // mov %rax,512+8q(%rsp)
            byte[] store = {0x48, (byte) 0x89, (byte) 0x84, 0x24, 0, 0, 0, 0};
            X86Code.putInt(store, 4, 512 + 8 * q);
            c.writeBytes(store);
        }
        c.writeBytes(mask);
        c.writeBytes(new byte[] {0x48, 0x0F, (byte) 0xC7, 0x24, 0x24});    // xsavec64 (%rsp)
        c.writeBytes(new byte[] {0x4C, (byte) 0x89, (byte) 0xDF}); // mov %r11,%rdi
        byte[] movabs = new byte[10];                               // movabs $resolver,%rax
        movabs[0] = 0x48;
        movabs[1] = (byte) 0xB8;
        X86Code.putLong(movabs, 2, resolver);
        c.writeBytes(movabs);
        c.writeBytes(new byte[] {(byte) 0xFF, (byte) 0xD0});       // call *%rax
        c.writeBytes(new byte[] {0x49, (byte) 0x89, (byte) 0xC3}); // mov %rax,%r11
        c.writeBytes(mask);
        c.writeBytes(new byte[] {0x48, 0x0F, (byte) 0xAE, 0x2C, 0x24});    // xrstor64 (%rsp)
        c.writeBytes(new byte[] {0x48, (byte) 0x8D, 0x65, (byte) 0xB8});   // lea -72(%rbp),%rsp
        c.writeBytes(new byte[] {0x5B, 0x41, 0x5A, 0x58});          // pop %rbx, %r10, %rax
        c.writeBytes(new byte[] {0x41, 0x59, 0x41, 0x58});          // pop %r9, %r8
        c.writeBytes(new byte[] {0x59, 0x5A, 0x5E, 0x5F});          // pop %rcx, %rdx, %rsi, %rdi
        c.writeBytes(new byte[] {0x5D});                            // pop %rbp
        c.writeBytes(new byte[] {0x41, (byte) 0xFF, (byte) 0xE3}); // jmp *%r11
        byte[] bytes = c.toByteArray();
        if (bytes.length > PROBE) {
            throw new AssertionError("reentry is " + bytes.length + " bytes");
        }
        return bytes;
    }

    /** {@code mov $low,%eax; mov $high,%edx}: the requested-feature bitmap of xsavec and xrstor. */
    private static byte[] componentMask(long mask) {
        byte[] b = {(byte) 0xB8, 0, 0, 0, 0, (byte) 0xBA, 0, 0, 0, 0};
        X86Code.putInt(b, 1, (int) mask);
        X86Code.putInt(b, 6, (int) (mask >>> 32));
        return b;
    }
}
