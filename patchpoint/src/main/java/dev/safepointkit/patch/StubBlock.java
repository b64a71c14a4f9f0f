package dev.safepointkit.patch;

import dev.safepointkit.events.internal.Libc;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

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
 *             256   stub i:        jmp *slot_i(%rip)                   8 bytes each
 *             1280  lazy entry i:  movabs $id_i, %r11; jmp reentry    16 bytes each
 * slot page   0     slot i: 8 bytes, the stub's current target (at first its lazy entry)
 * </pre>
 */
final class StubBlock {
    static final int CAPACITY = 128;
    static final int STUB_SIZE = 8;
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
            writeCode(alias, resolver);
        } finally {
            Libc.munmap(alias);
        }
        for (int i = 0; i < CAPACITY; i++) {
            setTarget(i, lazyEntry(i));
        }
    }

    /** The reentry, the stubs and the lazy entries, written through {@code code}, the alias of the code page. */
    private void writeCode(MemorySegment code, long resolver) {
        long base = mapping.address();
        code.fill((byte) 0xCC);  // int3 between the pieces
        byte[] reentry = reentry(resolver);
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
     * can carry an argument (rdi, rsi, rdx, rcx, r8, r9; rax for varargs; r10 the static chain;
     * xmm0-7) is saved, {@code resolve(r11)} is called with a 16-byte aligned stack, and the
     * registers are restored before the jump to the address it returned.
     */
    static byte[] reentry(long resolver) {
        ByteArrayOutputStream c = new ByteArrayOutputStream();
        c.writeBytes(new byte[] {0x55});                            // push %rbp
        c.writeBytes(new byte[] {0x48, (byte) 0x89, (byte) 0xE5});  // mov %rsp,%rbp
        c.writeBytes(new byte[] {0x57, 0x56, 0x52, 0x51});          // push %rdi, %rsi, %rdx, %rcx
        c.writeBytes(new byte[] {0x41, 0x50, 0x41, 0x51});          // push %r8, %r9
        c.writeBytes(new byte[] {0x50, 0x41, 0x52});                // push %rax, %r10
        c.writeBytes(new byte[] {0x48, (byte) 0x81, (byte) 0xEC, (byte) 0x80, 0, 0, 0});  // sub $128,%rsp
        for (int x = 0; x < 8; x++) {                               // movdqu %xmmX,16*X(%rsp)
            c.writeBytes(xmmAtRsp(0x7F, x));
        }
        c.writeBytes(new byte[] {0x4C, (byte) 0x89, (byte) 0xDF}); // mov %r11,%rdi
        byte[] movabs = new byte[10];                               // movabs $resolver,%rax
        movabs[0] = 0x48;
        movabs[1] = (byte) 0xB8;
        X86Code.putLong(movabs, 2, resolver);
        c.writeBytes(movabs);
        c.writeBytes(new byte[] {(byte) 0xFF, (byte) 0xD0});       // call *%rax
        c.writeBytes(new byte[] {0x49, (byte) 0x89, (byte) 0xC3}); // mov %rax,%r11
        for (int x = 0; x < 8; x++) {                               // movdqu 16*X(%rsp),%xmmX
            c.writeBytes(xmmAtRsp(0x6F, x));
        }
        c.writeBytes(new byte[] {0x48, (byte) 0x81, (byte) 0xC4, (byte) 0x80, 0, 0, 0});  // add $128,%rsp
        c.writeBytes(new byte[] {0x41, 0x5A, 0x58});                // pop %r10, %rax
        c.writeBytes(new byte[] {0x41, 0x59, 0x41, 0x58});          // pop %r9, %r8
        c.writeBytes(new byte[] {0x59, 0x5A, 0x5E, 0x5F});          // pop %rcx, %rdx, %rsi, %rdi
        c.writeBytes(new byte[] {0x5D});                            // pop %rbp
        c.writeBytes(new byte[] {0x41, (byte) 0xFF, (byte) 0xE3}); // jmp *%r11
        byte[] bytes = c.toByteArray();
        if (bytes.length > STUBS) {
            throw new AssertionError("reentry is " + bytes.length + " bytes");
        }
        return bytes;
    }

    /** {@code movdqu} between %xmmX and 16*X(%rsp): opcode 0x7F stores, 0x6F loads. */
    private static byte[] xmmAtRsp(int opcode, int x) {
        int modrm = (x == 0 ? 0x00 : 0x40) | x << 3 | 4;
        return x == 0
                ? new byte[] {(byte) 0xF3, 0x0F, (byte) opcode, (byte) modrm, 0x24}
                : new byte[] {(byte) 0xF3, 0x0F, (byte) opcode, (byte) modrm, 0x24, (byte) (16 * x)};
    }
}
