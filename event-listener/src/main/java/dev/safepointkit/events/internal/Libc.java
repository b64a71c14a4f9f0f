package dev.safepointkit.events.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The few Linux libc calls the host, the code patcher and the jitdump writer need, through FFM:
 * memory mappings and their protection, memory files for double-mapped code, files for the
 * jitdump marker mapping, membarrier, and the OS thread id. Failures are thrown as
 * {@link NativeException} with errno's name. Thread safe; the only state is counters that tests
 * read (live mappings, mprotect calls).
 */
public final class Libc {
    public static final int PROT_NONE = 0;
    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int PROT_EXEC = 4;
    public static final int MAP_SHARED = 0x01;
    public static final int MAP_PRIVATE = 0x02;
    public static final int MAP_FIXED = 0x10;
    public static final int MAP_ANONYMOUS = 0x20;
    /** x86-64: place the mapping in the low 2 GiB, for code with 32-bit absolute addresses. */
    public static final int MAP_32BIT = 0x40;
    public static final int O_RDONLY = 0;
    public static final int O_RDWR = 2;
    /** memfd_create: close the file in exec'd programs. */
    public static final int MFD_CLOEXEC = 1;
    /** membarrier commands (linux/membarrier.h). */
    public static final int MEMBARRIER_CMD_QUERY = 0;
    public static final int MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE = 32;
    public static final int MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE = 64;
    private static final long SYS_MEMBARRIER_X86_64 = 324;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle MMAP = handle("mmap", FunctionDescriptor.of(ValueLayout.ADDRESS,
            ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
            ValueLayout.JAVA_LONG));
    private static final MethodHandle MPROTECT = handle("mprotect", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    private static final MethodHandle MUNMAP = handle("munmap", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    private static final MethodHandle OPEN = handle("open", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle CLOSE = handle("close", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT));
    private static final MethodHandle MEMFD_CREATE = optionalHandle("memfd_create", FunctionDescriptor.of(
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle FTRUNCATE = handle("ftruncate", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
    /** {@code syscall(SYS_membarrier, cmd, flags, cpu_id)}: glibc has no wrapper for membarrier. */
    private static final MethodHandle SYSCALL3 = LINKER.downcallHandle(LIBC.findOrThrow("syscall"),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT), Linker.Option.firstVariadicArg(1), CAPTURE_ERRNO);
    private static final MethodHandle GETTID = LINKER.downcallHandle(LIBC.findOrThrow("gettid"),
            FunctionDescriptor.of(ValueLayout.JAVA_INT));
    private static final MethodHandle SYSCONF = LINKER.downcallHandle(LIBC.findOrThrow("sysconf"),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    private static final MethodHandle STRERROR = LINKER.downcallHandle(LIBC.findOrThrow("strerror"),
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final java.util.concurrent.atomic.AtomicLong LIVE_MAPPINGS = new java.util.concurrent.atomic.AtomicLong();
    private static final java.util.concurrent.atomic.AtomicLong MPROTECT_CALLS = new java.util.concurrent.atomic.AtomicLong();
    private static final java.util.concurrent.atomic.AtomicLong MEMBARRIER_CALLS = new java.util.concurrent.atomic.AtomicLong();
    private static final int SC_PAGESIZE = 30;
    private static final long PAGE_SIZE = sysconf(SC_PAGESIZE);

    private Libc() {
    }

    private static MethodHandle handle(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LIBC.findOrThrow(name), descriptor, CAPTURE_ERRNO);
    }

    /** Null when this libc lacks {@code name} (memfd_create needs glibc 2.27). */
    private static MethodHandle optionalHandle(String name, FunctionDescriptor descriptor) {
        return LIBC.find(name).map(a -> LINKER.downcallHandle(a, descriptor, CAPTURE_ERRNO)).orElse(null);
    }

    /** A libc call that failed, with errno. */
    public static final class NativeException extends RuntimeException {
        private static final long serialVersionUID = 1L;
        private final int errno;

        NativeException(String call, int errno) {
            super(call + " failed: " + describe(errno) + " (errno " + errno + ")");
            this.errno = errno;
        }

        public int errno() {
            return errno;
        }
    }

    public static long pageSize() {
        return PAGE_SIZE;
    }

    /** Mappings made by {@link #mmap} and not yet passed to {@link #munmap}: a leak shows here. */
    public static long liveMappings() {
        return LIVE_MAPPINGS.get();
    }

    /** One libc call that sets errno on failure; returns its result as a long. */
    @FunctionalInterface
    private interface ErrnoCall {
        long invoke(MemorySegment callState, Arena arena) throws Throwable;
    }

    /** Runs {@code call}; a result of -1 (how these calls and MAP_FAILED say so) throws with errno. */
    private static long checked(String what, ErrnoCall call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            long result = call.invoke(state, arena);
            if (result == -1L) {
                throw new NativeException(what, (int) ERRNO.get(state, 0L));
            }
            return result;
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(what, t);
        }
    }

    /**
     * Maps {@code length} bytes. The returned segment has that size: the kernel guarantees the
     * whole range on success. It stays valid until {@link #munmap}; no arena owns it.
     */
    public static MemorySegment mmap(long length, int protection, int flags, int fd, long offset) {
        long address = checked("mmap(" + length + " bytes)", (state, arena) -> ((MemorySegment) MMAP.invokeExact(state,
                MemorySegment.NULL, length, protection, flags, fd, offset)).address());
        LIVE_MAPPINGS.incrementAndGet();
        // mmap returned a mapping of exactly `length` bytes.
        return MemorySegment.ofAddress(address).reinterpret(length);
    }

    /** Calls of {@link #mprotect} so far, in the whole process: a test counts them across a code path. */
    public static long mprotectCalls() {
        return MPROTECT_CALLS.get();
    }

    /** Calls of {@link #membarrier} so far, in the whole process. */
    public static long membarrierCalls() {
        return MEMBARRIER_CALLS.get();
    }

    /**
     * Maps {@code length} bytes of file {@code fd} at exactly {@code at}, replacing the part of a
     * mapping of ours that was there: no new mapping to count, the enclosing one is unmapped whole.
     */
    public static MemorySegment mmapFixed(long at, long length, int protection, int flags, int fd, long offset) {
        long address = checked("mmap(0x" + Long.toHexString(at) + ", " + length + " bytes, MAP_FIXED)",
                (state, arena) -> ((MemorySegment) MMAP.invokeExact(state, MemorySegment.ofAddress(at), length, protection,
                        flags | MAP_FIXED, fd, offset)).address());
        if (address != at) {
            throw new IllegalStateException("MAP_FIXED mapped at 0x" + Long.toHexString(address) + ", not 0x"
                    + Long.toHexString(at));
        }
        // The kernel mapped exactly [at, at + length).
        return MemorySegment.ofAddress(address).reinterpret(length);
    }

    /** Whether {@link #memfdCreate} can work here: this libc has memfd_create. */
    public static boolean hasMemfd() {
        return MEMFD_CREATE != null;
    }

    /**
     * An anonymous memory file of {@code size} bytes (memfd_create + ftruncate), close-on-exec. Its
     * name shows in /proc/self/maps as {@code /memfd:NAME (deleted)}.
     *
     * @throws NativeException if the kernel refuses, or this libc has no memfd_create (errno ENOSYS, 38)
     */
    public static int memfdCreate(String name, long size) {
        if (MEMFD_CREATE == null) {
            throw new NativeException("memfd_create (not in this libc)", 38);
        }
        int fd = (int) checked("memfd_create(" + name + ")",
                (state, arena) -> (int) MEMFD_CREATE.invokeExact(state, arena.allocateFrom(name), MFD_CLOEXEC));
        try {
            checked("ftruncate(memfd " + name + ", " + size + ")", (state, arena) -> (int) FTRUNCATE.invokeExact(state, fd, size));
        } catch (RuntimeException e) {
            close(fd);
            throw e;
        }
        return fd;
    }

    /** {@code membarrier(cmd, 0, 0)}; returns its result (a bit mask for {@link #MEMBARRIER_CMD_QUERY}). */
    public static long membarrier(int cmd) {
        MEMBARRIER_CALLS.incrementAndGet();
        return checked("membarrier(" + cmd + ")",
                (state, arena) -> (long) SYSCALL3.invokeExact(state, SYS_MEMBARRIER_X86_64, cmd, 0, 0));
    }

    public static void mprotect(MemorySegment pages, int protection) {
        MPROTECT_CALLS.incrementAndGet();
        checked("mprotect(0x" + Long.toHexString(pages.address()) + ", " + pages.byteSize() + ")",
                (state, arena) -> (int) MPROTECT.invokeExact(state, pages, pages.byteSize(), protection));
    }

    public static void munmap(MemorySegment mapping) {
        checked("munmap(0x" + Long.toHexString(mapping.address()) + ", " + mapping.byteSize() + ")",
                (state, arena) -> (int) MUNMAP.invokeExact(state, mapping, mapping.byteSize()));
        LIVE_MAPPINGS.decrementAndGet();
    }

    public static int open(String path, int flags) {
        return (int) checked("open(" + path + ")",
                (state, arena) -> (int) OPEN.invokeExact(state, arena.allocateFrom(path), flags));
    }

    public static void close(int fd) {
        checked("close(" + fd + ")", (state, arena) -> (int) CLOSE.invokeExact(state, fd));
    }

    /** The calling thread's OS thread id (what perf records as tid). */
    public static int gettid() {
        try {
            return (int) GETTID.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static long sysconf(int name) {
        try {
            return (long) SYSCONF.invokeExact(name);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    static String describe(int errno) {
        try {
            MemorySegment s = (MemorySegment) STRERROR.invokeExact(errno);
            // strerror returns a NUL-terminated string; getString reads up to the NUL.
            return s.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }
}
