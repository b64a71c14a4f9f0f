package dev.safepointkit.patch;

import dev.safepointkit.events.internal.Libc;
import java.io.ByteArrayOutputStream;
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
 *             224   cpuid probe: {@code long cpuid(int leaf, int subleaf)}, run while the block
 *                   is built to size the reentry's save area
 *             256   stub i:        jmp *slot_i(%rip)                   8 bytes each
 *             1280  lazy entry i:  movabs $id_i, %r11; jmp reentry    16 bytes each
 * slot page   0     slot i: 8 bytes, the stub's current target (at first its lazy entry)
 * </pre>
 */
final class StubBlock {
    static final int CAPACITY = 128;
    static final int STUB_SIZE = 8;
    private static final int PROBE = 224;
    private static final int STUBS = 256;
    private static final int LAZY_ENTRY_SIZE = 16;
    private static final int LAZY_ENTRIES = STUBS + CAPACITY * STUB_SIZE;

    private final MemorySegment mapping;
    private final MemorySegment slots;
    private final long firstId;
    /** Set before the unmap: the slots' memory is gone, so reading or writing them would crash. */
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
        this.slots = raw.asSlice(page, page);
        try {
            writeCode(alias, resolver, extendedStateSize(alias));
        } catch (RuntimeException | Error e) {
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
     * The bytes {@code xsavec} needs for every state component the OS enabled (XCR0), from CPUID
     * leaf 0xD, run through a probe written into the block for the purpose (the compacted format
     * is never larger than the standard size CPUID reports).
     *
     * @throws IllegalStateException if the processor has no XSAVEC
     */
    private long extendedStateSize(MemorySegment code) {
        MemorySegment.copy(MemorySegment.ofArray(CPUID_PROBE), 0, code, PROBE, CPUID_PROBE.length);
        MethodHandle cpuid = Linker.nativeLinker().downcallHandle(MemorySegment.ofAddress(mapping.address() + PROBE),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        try {
            long xsaveFeatures = (long) cpuid.invokeExact(0xD, 1);
            long sizes = (long) cpuid.invokeExact(0xD, 0);
            if ((xsaveFeatures & 0b10) == 0) {
                throw new IllegalStateException("lazy entries save the argument registers at full width with xsavec,"
                        + " which this processor lacks (CPUID.(EAX=0DH,ECX=1):EAX[1] is 0)");
            }
            long size = sizes >>> 32;
            if (size < 576 || size > 1 << 20) {
                throw new IllegalStateException("CPUID leaf 0xD reports an XSAVE area of " + size + " bytes");
            }
            return size;
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("running the cpuid probe", t);
        }
    }

    /** {@code long cpuid(int leaf, int subleaf)}: returns ebx in the high half, eax in the low half. */
    private static final byte[] CPUID_PROBE = {
        0x53,                                       // push %rbx
        (byte) 0x89, (byte) 0xF8,                   // mov %edi,%eax
        (byte) 0x89, (byte) 0xF1,                   // mov %esi,%ecx
        0x0F, (byte) 0xA2,                          // cpuid
        0x48, (byte) 0xC1, (byte) 0xE3, 0x20,       // shl $32,%rbx
        (byte) 0x89, (byte) 0xC0,                   // mov %eax,%eax
        0x48, 0x09, (byte) 0xD8,                    // or %rbx,%rax
        0x5B,                                       // pop %rbx
        (byte) 0xC3,                                // ret
    };

    /** The reentry, the stubs and the lazy entries, written through {@code code}, the alias of the code page. */
    private void writeCode(MemorySegment code, long resolver, long xsaveSize) {
        long base = mapping.address();
        byte[] reentry = reentry(resolver, xsaveSize);
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
        checkMapped();
        ValueLayout.JAVA_LONG.varHandle().setVolatile(slots, 8L * i, target);
    }

    long target(int i) {
        checkMapped();
        return (long) ValueLayout.JAVA_LONG.varHandle().getVolatile(slots, 8L * i);
    }

    /** Whether {@code address} is one of this block's stubs. */
    boolean holdsStub(long address) {
        long first = stubAddress(0);
        return address >= first && address < first + (long) CAPACITY * STUB_SIZE && (address - first) % STUB_SIZE == 0;
    }

    void free() {
        freed = true;
        Libc.munmap(mapping);
    }

    boolean isFreed() {
        return freed;
    }

    private void checkMapped() {
        if (freed) {
            throw new IllegalStateException("the stubs are freed: their code patcher is closed");
        }
    }

    /**
     * The reentry trampoline. Entered by a jump from a lazy entry, so the stack is as the caller
     * left it at its call: the return address on top, stack arguments above. Every register that
     * can carry an argument is saved at full width: rdi, rsi, rdx, rcx, r8, r9, rax (varargs), r10
     * (the static chain) by pushes, and the whole extended state (x87, xmm, ymm, zmm, opmask
     * registers: SysV passes {@code __m256} in ymm0-7 and {@code __m512} in zmm0-7) with
     * {@code xsavec} into a 64-byte aligned area of {@code xsaveSize} bytes, as glibc's
     * {@code _dl_runtime_resolve_xsavec} does. Then {@code resolve(r11)} is called on that 64-byte
     * aligned stack, everything is restored ({@code xrstor}) and the code jumps to the address it
     * returned. rbx is saved too: it is callee-saved, and the area's size is subtracted through it.
     */
    static byte[] reentry(long resolver, long xsaveSize) {
        long area = (xsaveSize + 63) / 64 * 64;
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
        c.writeBytes(ALL_COMPONENTS);
        c.writeBytes(new byte[] {0x48, 0x0F, (byte) 0xC7, 0x24, 0x24});    // xsavec64 (%rsp)
        c.writeBytes(new byte[] {0x4C, (byte) 0x89, (byte) 0xDF}); // mov %r11,%rdi
        byte[] movabs = new byte[10];                               // movabs $resolver,%rax
        movabs[0] = 0x48;
        movabs[1] = (byte) 0xB8;
        X86Code.putLong(movabs, 2, resolver);
        c.writeBytes(movabs);
        c.writeBytes(new byte[] {(byte) 0xFF, (byte) 0xD0});       // call *%rax
        c.writeBytes(new byte[] {0x49, (byte) 0x89, (byte) 0xC3}); // mov %rax,%r11
        c.writeBytes(ALL_COMPONENTS);
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

    /** {@code mov $-1,%eax; mov $-1,%edx}: the component mask of xsavec and xrstor, every component. */
    private static final byte[] ALL_COMPONENTS = {(byte) 0xB8, -1, -1, -1, -1, (byte) 0xBA, -1, -1, -1, -1};
}
