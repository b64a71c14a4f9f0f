package dev.safepointkit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.testing.Fixtures;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bin/safepointkit itself, run on the jars this build packaged. */
class LauncherIT {
    @TempDir
    Path workingDirectory;
    @TempDir
    Path temp;

    /** {exit status, stdout, stderr} of the launcher run in {@link #workingDirectory} with TMPDIR at {@link #temp}. */
    private String[] launch(String... args) throws IOException, InterruptedException {
        Path root = Fixtures.projectRoot();
        ProcessBuilder pb = new ProcessBuilder(Stream.concat(Stream.of(root.resolve("bin/safepointkit").toString()),
                Stream.of(args)).toList()).directory(workingDirectory.toFile());
        pb.environment().put("SAFEPOINTKIT_NO_BUILD", "1");
        pb.environment().put("TMPDIR", temp.toString());
        pb.redirectOutput(workingDirectory.resolveSibling(workingDirectory.getFileName() + ".out").toFile());
        pb.redirectError(workingDirectory.resolveSibling(workingDirectory.getFileName() + ".err").toFile());
        Process p = pb.start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the launcher did not finish");
        return new String[] {Integer.toString(p.exitValue()),
            Files.readString(Path.of(workingDirectory + ".out"), StandardCharsets.UTF_8),
            Files.readString(Path.of(workingDirectory + ".err"), StandardCharsets.UTF_8)};
    }

    @Test
    void aCrashInJitCodeLeavesItsLogInTheTempDirectoryNotTheWorkingDirectory() throws Exception {
        // sum_array(8, 4) reads the words at address 8 onwards: a SIGSEGV inside JIT code.
        String math = Fixtures.projectRoot().resolve("fixtures/jit/x86_64/math.o").toString();
        String[] r = launch("run", "--call", "sum_array", "--arg", "8", "--arg", "4", math);
        assertNotEquals("0", r[0], r[2]);
        List<Path> logs;
        try (Stream<Path> files = Files.list(temp)) {
            logs = files.filter(f -> f.getFileName().toString().matches("safepointkit-hs_err_pid\\d+\\.log")).toList();
        }
        assertEquals(1, logs.size(), "one crash log in TMPDIR; stdout: " + r[1]);
        assertTrue(Files.readString(logs.getFirst()).contains("SIGSEGV"), logs.getFirst().toString());
        try (Stream<Path> files = Files.list(workingDirectory)) {
            assertEquals(List.of(), files.toList(), "nothing written to the working directory");
        }
    }

    @Test
    void aRunGrantsNativeAccessToEveryModuleThatNeedsItSoTheJvmWarnsOfNone() throws Exception {
        // run attaches a registry, which reads the object's .eh_frame where it is mapped.
        String math = Fixtures.projectRoot().resolve("fixtures/jit/x86_64/math.o").toString();
        String[] r = launch("run", "--call", "fib", "--arg", "10", math);
        assertEquals("0", r[0], r[2]);
        assertEquals("fib(10) = 55\n", r[1]);
        assertEquals("", r[2], "the JVM's restricted-method warnings name a module the launcher leaves out");
    }

    @Test
    void aCrashTheJvmCannotReportIsStillNamedByTheLauncher() throws Exception {
        // fib(10^8) recurses 10^8 deep before it adds anything: JIT code overflows the stack,
        // where the JVM has no stack left to write its log from and the process just dies.
        String math = Fixtures.projectRoot().resolve("fixtures/jit/x86_64/math.o").toString();
        String[] r = launch("run", "--call", "fib", "--arg", "100000000", math);
        assertEquals("139", r[0], r[2]);
        assertTrue(r[2].startsWith("safepointkit: the JVM died of SEGV (exit 139), most likely in JIT code: check the"
                + " --call function's --arg count and values;"), r[2]);
        assertEquals(1, r[2].lines().count(), "one line, not the shell's report of the whole command: " + r[2]);
    }

    @Test
    void aBadOptionIsOneLineAndStatusTwo() throws Exception {
        String[] r = launch("demo", "--threads", "0");
        assertEquals("2", r[0], r[2]);
        assertEquals("safepointkit demo: --threads 0 is out of range (1 to 64) (see 'safepointkit demo --help')\n", r[2]);
    }
}
