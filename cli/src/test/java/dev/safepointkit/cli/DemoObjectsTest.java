package dev.safepointkit.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.LlvmTools;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Test;

/**
 * The demo's bundled runtime.o and binarytrees.o are what {@code safepointkit compile} makes from
 * their committed sources (regen-fixtures.sh writes them so), with the runtime's allocation fast
 * path inlined into binary-trees.
 */
class DemoObjectsTest {
    @TempDir
    Path out;

    @Test
    void theBundledObjectsAreAFreshCompileThroughThePipeline() throws Exception {
        LlvmTools.requireAvailable(LlvmCompiler::open);
        Path root = Fixtures.projectRoot();
        Path llvm = root.resolve("examples/demo/src/main/llvm");
        String[] r = CliRunner.run("compile", "--runtime", llvm.resolve("runtime.ll").toString(), "--out", out.toString(),
                llvm.resolve("binarytrees.ll").toString());
        assertEquals("0", r[0], r[2]);
        for (String name : new String[] {"runtime.o", "binarytrees.o"}) {
            assertArrayEquals(Files.readAllBytes(root.resolve("fixtures/demo/x86_64/" + name)), Files.readAllBytes(out.resolve(name)),
                    name + " differs from a fresh compile of its source: run scripts/regen-fixtures.sh");
        }
        Set<String> undefined = undefinedSymbols(Files.readAllBytes(out.resolve("binarytrees.o")));
        assertFalse(undefined.contains("rt_alloc_fast"), "the fast path is inlined: " + undefined);
        assertTrue(undefined.contains("rt_alloc"), "the slow path is called: " + undefined);
    }

    private static Set<String> undefinedSymbols(byte[] object) throws Exception {
        ElfFile elf = ElfFile.parse(MemorySegment.ofArray(object));
        return elf.symbols().stream().filter(ElfSymbol::isUndefined).map(ElfSymbol::name).collect(Collectors.toSet());
    }
}
