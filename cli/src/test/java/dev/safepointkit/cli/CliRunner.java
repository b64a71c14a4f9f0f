package dev.safepointkit.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** Runs the command line in-process: {exit status, stdout, stderr}. */
final class CliRunner {
    private CliRunner() {}

    static String[] run(String... args) {
        PrintStream stdout = System.out;
        PrintStream stderr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int status = SafepointKit.commandLine().execute(args);
            return new String[] {Integer.toString(status), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
        } finally {
            System.setOut(stdout);
            System.setErr(stderr);
        }
    }

    /** Asserts that {@code r} is a failure with {@code status}, nothing on stdout and one line on stderr that starts so. */
    static void assertOneLineError(String[] r, int status, String lineStart) {
        org.junit.jupiter.api.Assertions.assertEquals(Integer.toString(status), r[0], r[2]);
        org.junit.jupiter.api.Assertions.assertEquals("", r[1], "nothing on stdout");
        org.junit.jupiter.api.Assertions.assertTrue(r[2].startsWith(lineStart), r[2]);
        org.junit.jupiter.api.Assertions.assertEquals(1, r[2].lines().count(), "one line: " + r[2]);
    }
}
