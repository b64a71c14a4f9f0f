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
 * The few Linux libc calls the host and the jitdump writer need, through FFM: memory mappings
 * and their protection, files for the jitdump marker mapping, and the OS thread id. Failures
 * are thrown as {@link NativeException} with errno's name. Stateless and thread safe.
 */
public final class Libc {
    public static final int PROT_NONE = 0;
    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int PROT_EXEC = 4;
    public static final int MAP_PRIVATE = 0x02;
    public static final int MAP_ANONYMOUS = 0x20;
    /** x86-64: place the mapping in the low 2 GiB, for code with 32-bit absolute addresses. */
    public static final int MAP_32BIT = 0x40;
    public static final int O_RDONLY = 0;
    public static final int O_RDWR = 2;

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
    private static final MethodHandle GETTID = LINKER.downcallHandle(LIBC.findOrThrow("gettid"),
            FunctionDescriptor.of(ValueLayout.JAVA_INT));
    private static final MethodHandle SYSCONF = LINKER.downcallHandle(LIBC.findOrThrow("sysconf"),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    private static final MethodHandle STRERROR = LINKER.downcallHandle(LIBC.findOrThrow("strerror"),
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final java.util.concurrent.atomic.AtomicLong LIVE_MAPPINGS = new java.util.concurrent.atomic.AtomicLong();
    private static final int SC_PAGESIZE = 30;
    private static final long PAGE_SIZE = sysconf(SC_PAGESIZE);

    private Libc() {
    }

    private static MethodHandle handle(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LIBC.findOrThrow(name), descriptor, CAPTURE_ERRNO);
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

    public static void mprotect(MemorySegment pages, int protection) {
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
