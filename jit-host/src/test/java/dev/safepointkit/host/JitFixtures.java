package dev.safepointkit.host;

import dev.safepointkit.stackmap.testing.Fixtures;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

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
