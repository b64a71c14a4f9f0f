package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Objects the host must refuse, each with a clear error naming the object and the symbol or
 * relocation, and without leaking a mapping: each case is repeated, and the count of mappings
 * the linker holds must not change.
 */
class JitHostRejectsTest {
    private static final int REPEAT = 40;

    private static JitLoadException refusedWithoutLeak(JitHost host, String name, byte[] bytes) {
        // One attempt first, so lazily created JVM mappings do not count against the host.
        JitLoadException first = assertThrows(JitLoadException.class, () -> host.load(name, MemorySegment.ofArray(bytes)));
        long live = JitHost.liveMappings();
        for (int i = 0; i < REPEAT; i++) {
            assertThrows(JitLoadException.class, () -> host.load(name, MemorySegment.ofArray(bytes)));
        }
        // /proc/self/maps cannot show this: the kernel merges adjacent anonymous mappings, and
        // the JVM's own commits drown a few pages. The linker's count is exact.
        assertEquals(live, JitHost.liveMappings(), "mappings the linker made and did not unmap over " + REPEAT + " failed loads");
        return first;
    }

    @Test
    void truncatedOrCorruptElf() throws Exception {
        try (JitHost host = new JitHost()) {
            byte[] math = JitFixtures.bytes("math");
            JitLoadException e = refusedWithoutLeak(host, "half.o", Arrays.copyOf(math, math.length / 2));
            assertTrue(e.getMessage().startsWith("half.o: malformed ELF"), e.getMessage());
            e = refusedWithoutLeak(host, "text.o", "not an object file, just some text that is long enough to fill a header".getBytes());
            assertTrue(e.getMessage().contains("bad magic"), e.getMessage());
            assertTrue(host.objects().isEmpty());
        }
    }

    @Test
    void unsupportedRelocationNamesItsType() throws Exception {
        byte[] math = JitFixtures.bytes("math");
        ElfFile elf = ElfFile.parse(MemorySegment.ofArray(math));
        ElfSection rela = elf.findSection(".rela.text").orElseThrow();
        ByteBuffer b = ByteBuffer.wrap(math).order(ByteOrder.LITTLE_ENDIAN);
        int info = (int) rela.offset() + 8;
        b.putLong(info, (b.getLong(info) & 0xffff_ffff_0000_0000L) | 19); // R_X86_64_TLSGD
        try (JitHost host = new JitHost()) {
            JitLoadException e = refusedWithoutLeak(host, "tls.o", math);
            assertTrue(e.getMessage().startsWith("tls.o: unsupported relocation R_X86_64_TLSGD in .text at offset 0x"),
                    e.getMessage());
        }
    }

    @Test
    void unresolvedSymbolIsNamedAndNothingStaysMapped() throws Exception {
        try (JitHost host = new JitHost()) {
            JitLoadException e = refusedWithoutLeak(host, "caller.o", JitFixtures.bytes("caller"));
            assertTrue(e.getMessage().matches("caller\\.o: unresolved symbol '(add|fib|host_callback|apply|counter)'.*"),
                    e.getMessage());
            assertTrue(host.objects().isEmpty());
            assertTrue(host.symbol("call_add").isEmpty());
        }
    }

    @Test
    void loadingTheSameObjectTwiceClashes() throws Exception {
        try (JitHost host = new JitHost()) {
            JitFixtures.load(host, "math");
            JitLoadException e = refusedWithoutLeak(host, "math-again.o", JitFixtures.bytes("math"));
            assertTrue(e.getMessage().matches("math-again\\.o: symbol '\\w+' is already defined by loaded object math\\.o.*"),
                    e.getMessage());
            assertEquals(1, host.objects().size());
        }
    }

    @Test
    void otherMachinesAndLinkedFilesAreRefused() throws Exception {
        try (JitHost host = new JitHost()) {
            byte[] arm = Files.readAllBytes(Fixtures.stackMapFixtures().resolve("aarch64/O2/stackmaps.o"));
            JitLoadException e = refusedWithoutLeak(host, "arm.o", arm);
            assertTrue(e.getMessage().contains("machine aarch64 (e_machine 183) is not supported"), e.getMessage());
            byte[] so = Files.readAllBytes(Fixtures.stackMapFixtures().resolve("linked/x86_64/libpair.so"));
            e = refusedWithoutLeak(host, "libpair.so", so);
            assertTrue(e.getMessage().contains("not a relocatable object"), e.getMessage());
        }
    }
}
