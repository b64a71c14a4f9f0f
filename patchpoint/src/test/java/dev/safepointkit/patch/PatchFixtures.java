package dev.safepointkit.patch;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** The patching fixtures (fixtures/patch/x86_64/*.o, from fixtures/patch/src) and decoding helpers. */
final class PatchFixtures {
    private PatchFixtures() {
    }

    static byte[] bytes(String name) {
        try {
            return Files.readAllBytes(Fixtures.projectRoot().resolve("fixtures/patch/x86_64/" + name + ".o"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Whether this processor has AVX-512 ({@code avx512f} in /proc/cpuinfo): the zmm fixtures
     * (vec_caller, vec_body) need it, the ymm ones (vec256_caller, vec256_body) only AVX2. Tests pick
     * the fixture by it; none is skipped.
     */
    static boolean hasAvx512() {
        try {
            String flags = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("flags"))
                    .findFirst().map(l -> l.substring(l.indexOf(':') + 1) + " ").orElse("");
            return flags.contains(" avx512f ");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String source(String name) {
        try {
            return Files.readString(Fixtures.projectRoot().resolve("fixtures/patch/src/" + name + ".ll"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static JitObject load(JitHost host, String name) throws JitLoadException {
        return host.load(name + ".o", MemorySegment.ofArray(bytes(name)));
    }

    /** The target of the call or jmp rel32 whose displacement is at {@code site}, decoded from memory. */
    static long branchTarget(long site) {
        MemorySegment code = MemorySegment.ofAddress(site - 1).reinterpret(5);
        int opcode = Byte.toUnsignedInt(code.get(ValueLayout.JAVA_BYTE, 0));
        if (opcode != 0xE8 && opcode != 0xE9) {
            throw new AssertionError(String.format("0x%x: not a call or jmp rel32 (opcode 0x%x)", site - 1, opcode));
        }
        return site + 4 + code.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 1);
    }

    static byte[] read(long address, int length) {
        return MemorySegment.ofAddress(address).reinterpret(length).toArray(ValueLayout.JAVA_BYTE);
    }

    static Path root() {
        return Fixtures.projectRoot();
    }
}
