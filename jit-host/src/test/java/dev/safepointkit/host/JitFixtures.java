package dev.safepointkit.host;

import dev.safepointkit.stackmap.testing.Fixtures;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/** The JIT fixtures (fixtures/jit/x86_64/*.o) and a look at this process's memory mappings. */
final class JitFixtures {
    private JitFixtures() {
    }

    static Path object(String name) {
        return Fixtures.projectRoot().resolve("fixtures/jit/x86_64/" + name + ".o");
    }

    static byte[] bytes(String name) {
        try {
            return Files.readAllBytes(object(name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static MemorySegment segment(String name) {
        return MemorySegment.ofArray(bytes(name));
    }

    static JitObject load(JitHost host, String name) throws JitLoadException {
        return host.load(name + ".o", segment(name));
    }

    /** Calls of {@link #hostCallback} so far. */
    static final AtomicLong CALLBACKS = new AtomicLong();

    /** The Java side of caller.o's import host_callback: counts the call and returns n * 1000. */
    static long hostCallback(long n) {
        CALLBACKS.incrementAndGet();
        return n * 1000;
    }

    /** Loads math.o and data.o, defines host_callback, then loads caller.o, which imports from all three. */
    static JitObject loadCaller(JitHost host, Arena arena) throws ReflectiveOperationException, JitLoadException {
        load(host, "math");
        load(host, "data");
        defineHostCallback(host, arena);
        return load(host, "caller");
    }

    /** Defines caller.o's import host_callback as an upcall to {@link #hostCallback}, for as long as {@code arena} lives. */
    static void defineHostCallback(JitHost host, Arena arena) throws ReflectiveOperationException, JitLoadException {
        host.defineUpcall("host_callback",
                MethodHandles.lookup().findStatic(JitFixtures.class, "hostCallback", MethodType.methodType(long.class, long.class)),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), arena);
    }

    /** Lines of /proc/self/maps: one per mapping of this process. */
    static List<String> mappings() {
        try {
            return Files.readAllLines(Path.of("/proc/self/maps"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Whether any mapping of this process overlaps [start, start + length). */
    static boolean anyMappingOverlaps(long start, long length) {
        for (String line : mappings()) {
            String[] range = line.split("\\s+")[0].split("-");
            long from = Long.parseUnsignedLong(range[0], 16);
            long to = Long.parseUnsignedLong(range[1], 16);
            if (from < start + length && start < to) {
                return true;
            }
        }
        return false;
    }

    /** The permissions ("r-xp", ...) of the mapping that holds {@code address}. */
    static String protectionAt(long address) {
        for (String line : mappings()) {
            String[] parts = line.split("\\s+");
            String[] range = parts[0].split("-");
            long start = Long.parseUnsignedLong(range[0], 16);
            long end = Long.parseUnsignedLong(range[1], 16);
            if (Long.compareUnsigned(address, start) >= 0 && Long.compareUnsigned(address, end) < 0) {
                return parts[1];
            }
        }
        throw new AssertionError("no mapping holds 0x" + Long.toHexString(address));
    }
}
