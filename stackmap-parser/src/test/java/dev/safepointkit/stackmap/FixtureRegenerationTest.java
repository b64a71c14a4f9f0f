package dev.safepointkit.stackmap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.LlvmTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The committed objects and listings are what the committed script makes from the committed IR
 * with the installed LLVM 19: regenerating them changes no byte, so fixtures cannot drift.
 */
class FixtureRegenerationTest {
    private static final List<String> PIPELINE_MADE = List.of("demo/x86_64/runtime.o", "demo/x86_64/binarytrees.o");

    @Test
    void regeneratingFromTheSourcesReproducesEveryCommittedFixture(@TempDir Path out) throws Exception {
        LlvmTools.require("llc-19");
        LlvmTools.require("llvm-readobj-19");
        LlvmTools.require("ld.lld-19");
        Path script = Fixtures.projectRoot().resolve("scripts/regen-fixtures.sh");
        Process p = new ProcessBuilder("bash", script.toString(), "--out", out.toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(5, TimeUnit.MINUTES) || p.exitValue() != 0) {
            throw new AssertionError("regen-fixtures.sh failed:\n" + log);
        }
        Path fixtures = Fixtures.projectRoot().resolve("fixtures");
        List<Path> committed = generated(fixtures);
        assertEquals(committed, generated(out), "the script writes exactly the committed set of files");
        for (Path file : committed) {
            assertArrayEquals(Files.readAllBytes(fixtures.resolve(file)),
                    Files.readAllBytes(out.resolve(file)), () -> file + " differs from a fresh build of its source");
        }
    }

    /** Every generated file under a fixtures root: all but the sources. */
    private static List<Path> generated(Path root) throws Exception {
        try (Stream<Path> files = Files.walk(root)) {
            return files.filter(Files::isRegularFile)
                    .map(root::relativize)
                    .filter(p -> p.getNameCount() < 2 || !p.getName(1).toString().equals("src"))
                    // The compile pipeline makes these two; cli's DemoObjectsTest checks them.
                    .filter(p -> !PIPELINE_MADE.contains(p.toString()))
                    .sorted()
                    .toList();
        }
    }
}
