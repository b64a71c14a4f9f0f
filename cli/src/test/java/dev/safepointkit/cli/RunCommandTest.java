package dev.safepointkit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code safepointkit run}: load fixture objects and call into them. */
class RunCommandTest {

    private static String[] run(String... args) {
        return CliRunner.run(args);
    }

    private static String jit(String name) {
        return Fixtures.projectRoot().resolve("fixtures/jit/x86_64/" + name + ".o").toString();
    }

    @Test
    void callsAFunctionOfALoadedObject() {
        String[] r = run("run", "--call", "add", "--arg", "40", "--arg", "2", jit("math"));
        assertEquals("0", r[0], r[2]);
        assertEquals("add(40, 2) = 42\n", r[1]);
    }

    @Test
    void writesAJitdumpWhenAsked() throws Exception {
        Path dir = Files.createTempDirectory("jitdump");
        String[] r = run("run", "--jitdump", dir.toString(), "--call", "fib", "--arg", "20", "--repeat", "3", jit("math"));
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].startsWith("fib(20) = 6765\n3 calls in "), r[1]);
        try (var files = Files.list(dir)) {
            Path dump = files.filter(p -> p.getFileName().toString().matches("jit-\\d+\\.dump")).findFirst().orElseThrow();
            assertTrue(Files.size(dump) > 40);
        }
    }

    @Test
    void anUnresolvedSymbolIsAOneLineError() {
        String[] r = run("run", "--call", "call_add", "--arg", "1", "--arg", "2", jit("caller"));
        assertEquals("1", r[0]);
        assertTrue(r[2].startsWith("safepointkit run: " + jit("caller") + ": unresolved symbol '"), r[2]);
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "-1"})
    void aRepeatCountBelowOneIsRefusedWithoutCalling(String count) {
        CliRunner.assertOneLineError(run("run", "--call", "fib", "--arg", "10", "--repeat", count, jit("math")), 2,
                "safepointkit run: --repeat " + count + " is out of range (1 to 2147483647)");
    }

    @Test
    void aMissingFileAndADirectoryAreNamed() throws Exception {
        CliRunner.assertOneLineError(run("run", "--call", "fib", "/nonexistent.o"), 1, "safepointkit run: /nonexistent.o: no such file");
        Path dir = Files.createTempDirectory("objects");
        CliRunner.assertOneLineError(run("run", "--call", "fib", dir.toString()), 1,
                "safepointkit run: " + dir + ": is a directory");
    }

    @Test
    void helpStatesTheRepeatRange() {
        String[] r = run("run", "--help");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].replaceAll("\\s+", " ").contains("1 to 2147483647"), r[1]);
    }

    @Test
    void anObjectWhoseSafepointsTheRegistryRefusesIsNotRun() throws Exception {
        Path bad = Files.createTempDirectory("objects").resolve("bad-safepoints.o");
        Files.write(bad, Fixtures.withFirstInstructionOffset(Files.readAllBytes(Path.of(jit("safepoints"))), 0x00FF_FFFF));
        String[] good = run("run", "--call", "mapped", "--arg", "1", "--arg", "2", jit("host_poll"), jit("safepoints"));
        assertEquals("0", good[0], good[2]);
        CliRunner.assertOneLineError(run("run", "--call", "mapped", "--arg", "1", "--arg", "2", jit("host_poll"), bad.toString()), 1,
                "safepointkit run: " + bad + ": not loaded, required listener the safepoint registry failed in objectLoaded: ");
    }

    @Test
    void aJitdumpPathThatIsAFileIsOneUsageLine() throws Exception {
        Path file = Files.createTempFile("jitdump", ".bin");
        CliRunner.assertOneLineError(run("run", "--jitdump", file.toString(), "--call", "fib", "--arg", "3", jit("math")), 2,
                "safepointkit run: --jitdump " + file + " is not a directory");
    }
}
