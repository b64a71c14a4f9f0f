package dev.safepointkit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.LlvmTools;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * gdb from the image debugging JIT code in a JVM, as README's "Debugging JIT code with gdb" tells
 * a user to: every session runs {@code gdb -batch} on a real JVM (bin/safepointkit itself, or
 * {@link GdbProgram}) with the JVM's own signals passed through, and checks what gdb printed.
 * Skipped without gdb on a developer's machine, failed without it in CI.
 */
class GdbIT {
    /** What the JVM uses signals for (implicit null checks, polls, thread suspension): gdb must let them through. */
    private static final List<String> PRELUDE = List.of("set pagination off", "set confirm off", "set breakpoint pending on",
            "handle SIGSEGV nostop noprint pass", "handle SIGBUS nostop noprint pass", "handle SIGFPE nostop noprint pass",
            "handle SIGILL nostop noprint pass", "handle SIGUSR2 nostop noprint pass", "handle SIGQUIT nostop noprint pass");
    private static final Pattern FIB_FRAME = Pattern.compile("(?m)^#\\d+ +0x\\p{XDigit}+ in fib \\(\\)");

    @TempDir
    Path temp;

    private static Path root() {
        return Fixtures.projectRoot();
    }

    private static String math() {
        return root().resolve("fixtures/jit/x86_64/math.o").toString();
    }

    /** Runs {@code gdb -batch} with the prelude and {@code commands} on {@code program}; returns all it printed. */
    private String gdb(List<String> commands, Map<String, String> environment, List<String> program)
            throws IOException, InterruptedException {
        Path gdb = LlvmTools.requireProgram("gdb", "apt-get install gdb");
        Path script = Files.createTempFile(temp, "commands", ".gdb");
        List<String> lines = new ArrayList<>(PRELUDE);
        lines.addAll(commands);
        Files.write(script, lines);
        // The source directory: debug.o's line table names its IR relative to the project root.
        List<String> command = new ArrayList<>(List.of(gdb.toString(), "-nx", "-batch", "-ex", "directory " + root(),
                "-x", script.toString(), "--args"));
        command.addAll(program);
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().put("SAFEPOINTKIT_NO_BUILD", "1");
        // The launcher execs the JVM (gdb follows an exec, not a fork).
        pb.environment().put("SAFEPOINTKIT_EXEC", "1");
        pb.environment().put("TMPDIR", temp.toString());
        pb.environment().putAll(environment);
        Path out = Files.createTempFile(temp, "gdb", ".out");
        pb.redirectOutput(out.toFile());
        Process p = pb.start();
        if (!p.waitFor(240, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            throw new AssertionError("gdb did not finish in 240 s:\n" + Files.readString(out, StandardCharsets.UTF_8));
        }
        return Files.readString(out, StandardCharsets.UTF_8);
    }

    /** bin/safepointkit run, through bash, whose exec of the JVM (SAFEPOINTKIT_EXEC=1) gdb follows. */
    private static List<String> launcher(String... args) {
        List<String> c = new ArrayList<>(List.of("/bin/bash", root().resolve("bin/safepointkit").toString()));
        c.addAll(List.of(args));
        return c;
    }

    /** A JVM running {@link GdbProgram} on this test's class path. */
    private static List<String> program(String... args) {
        List<String> c = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Dsafepointkit.gdb=true", "-cp", System.getProperty("java.class.path"),
                GdbProgram.class.getName()));
        c.addAll(List.of(args));
        return c;
    }

    /** The text between the line {@code ==name==} that an {@code echo} printed and the next such line (or the end). */
    private static String section(String output, String name) {
        int start = output.indexOf("==" + name + "==\n");
        assertTrue(start >= 0, "gdb never reached ==" + name + "==:\n" + output);
        int end = output.indexOf("\n==", start + name.length() + 5);
        return output.substring(start, end < 0 ? output.length() : end);
    }

    private static int count(Pattern p, String text) {
        Matcher m = p.matcher(text);
        int n = 0;
        while (m.find()) {
            n++;
        }
        return n;
    }

    /** `break fib` pending, 3 more hits, a backtrace of fib's own recursion, then the run ends as it would without gdb. */
    private static void assertStopsInFibAndUnwindsThroughIt(String output) {
        assertTrue(output.matches("(?s).*Breakpoint 1 \\(fib\\) pending\\..*"), output);
        String bt = section(output, "bt");
        assertTrue(bt.contains("hit Breakpoint 1, 0x") || output.contains("hit Breakpoint 1, 0x"), output);
        assertTrue(count(FIB_FRAME, bt) >= 4, "bt after continue 3 shows at least 4 fib frames:\n" + bt);
        assertTrue(output.contains("fib(12) = 144"), output);
        assertTrue(output.contains("exited normally"), output);
    }

    private static final List<String> BREAK_FIB = List.of("break fib", "run", "continue 3", "echo ==bt==\\n", "bt",
            "echo ==end==\\n", "delete", "continue");

    @Test
    void runStopsAtAPendingBreakOnFibAndBacktracesThroughItsRecursion() throws Exception {
        String output = gdb(BREAK_FIB, Map.of("JAVA_TOOL_OPTIONS", "-Dsafepointkit.gdb=true"),
                launcher("run", "--call", "fib", "--arg", "12", math()));
        assertStopsInFibAndUnwindsThroughIt(output);
    }

    @Test
    void aHardwareBreakpointNeedsNoDebuggerWritableCode() throws Exception {
        // Without -Dsafepointkit.gdb=true the code is a shared mapping gdb cannot write int3 into.
        List<String> commands = new ArrayList<>(BREAK_FIB);
        commands.set(0, "hbreak fib");
        String output = gdb(commands, Map.of(), launcher("run", "--call", "fib", "--arg", "12", math()));
        assertStopsInFibAndUnwindsThroughIt(output.replace("Hardware assisted breakpoint 1", "Breakpoint 1"));
    }

    @Test
    void withLibLlvmInTheProcessGdbStillSeesTheHostsCode() throws Exception {
        // An IR file makes run compile through libLLVM, which exports a __jit_debug_descriptor of its
        // own; the host registers math.o with the project's, and gdb watches both. (fib itself comes
        // from math.o: compiled through the pipeline, LLVM infers nounwind and llc then emits no CFI.)
        List<String> commands = new ArrayList<>(List.of("set debug jit 1"));
        commands.addAll(BREAK_FIB.subList(0, 5));
        commands.addAll(List.of("echo ==libraries==\\n", "info sharedlibrary", "echo ==descriptors==\\n",
                "info variables ^__jit_debug_descriptor$", "echo ==end==\\n", "set debug jit 0", "delete", "continue"));
        String output = gdb(commands, Map.of("JAVA_TOOL_OPTIONS", "-Dsafepointkit.gdb=true"),
                launcher("run", "--call", "fib", "--arg", "12", root().resolve("fixtures/jit/src/data.ll").toString(), math()));
        assertStopsInFibAndUnwindsThroughIt(output);
        assertTrue(section(output, "libraries").contains("libLLVM"), section(output, "libraries"));
        assertTrue(section(output, "libraries").contains("safepointkit-gdbjit-"), section(output, "libraries"));
        // gdb sets its JIT breakpoint in every object that defines __jit_debug_register_code.
        TreeSet<String> jitBreakpoints = new TreeSet<>();
        Matcher m = Pattern.compile("jit_breakpoint_re_set_internal: breakpoint_addr = (0x\\p{XDigit}+)").matcher(output);
        while (m.find()) {
            jitBreakpoints.add(m.group(1));
        }
        assertEquals(2, jitBreakpoints.size(), "libLLVM's and the project's __jit_debug_register_code:\n" + output);
        String descriptors = section(output, "descriptors");
        assertTrue(descriptors.contains("gdb_jit.c") && descriptors.contains("Non-debugging symbols"), descriptors);
    }

    @Test
    void withDebugInformationGdbShowsTheLinesOfTheSource() throws Exception {
        // debug.o's DWARF names the lines of its own IR (fixtures/jit/src/debug.ll, relative to the root).
        List<String> commands = new ArrayList<>(BREAK_FIB.subList(0, 5));
        commands.addAll(List.of("echo ==line==\\n", "info line *$pc", "list 7,7", "echo ==end==\\n", "delete", "continue"));
        String output = gdb(commands, Map.of("JAVA_TOOL_OPTIONS", "-Dsafepointkit.gdb=true"),
                launcher("run", "--call", "fib", "--arg", "12", root().resolve("fixtures/jit/x86_64/debug.o").toString()));
        String bt = section(output, "bt");
        assertTrue(count(Pattern.compile("(?m)^#[123] +0x\\p{XDigit}+ in fib \\(\\) at fixtures/jit/src/debug\\.ll:11$"), bt) == 3,
                "each caller is at the first recursive call, line 11:\n" + bt);
        String line = section(output, "line");
        assertTrue(line.contains("Line 7 of \"fixtures/jit/src/debug.ll\" starts at address"), line);
        assertTrue(line.contains("7\t  %small = icmp slt i64 %n, 2, !dbg !20"), line);
        assertTrue(output.contains("fib(12) = 144") && output.contains("exited normally"), output);
    }

    private static void assertFibKnownUntilUnloaded(String output) {
        String loaded = section(output, "loaded");
        assertTrue(loaded.contains("hit Breakpoint 1, 0x") || output.contains("hit Breakpoint 1, 0x"), output);
        assertTrue(Pattern.compile("(?m)^0x\\p{XDigit}+ +fib$").matcher(loaded).find(), "fib is a JIT function:\n" + loaded);
        String unloaded = section(output, "unloaded");
        assertTrue(unloaded.contains("All functions matching regular expression \"^fib$\":"), unloaded);
        assertFalse(Pattern.compile("(?m)^0x\\p{XDigit}+ +fib$").matcher(unloaded).find(), "fib is gone:\n" + unloaded);
        assertTrue(Pattern.compile("(?m)^0x\\p{XDigit}+ +read_table$").matcher(unloaded).find(), unloaded);
        assertTrue(output.contains("read_table(1) = 3") && output.contains("exited normally"), output);
    }

    private static final List<String> UNLOAD = List.of("break fib", "break read_table", "run", "echo ==loaded==\\n",
            "info functions ^fib$", "delete 1", "continue", "echo ==unloaded==\\n", "info functions ^fib$",
            "info functions ^read_table$", "echo ==end==\\n", "continue");

    @Test
    void afterUnloadGdbNoLongerFindsFib() throws Exception {
        assertFibKnownUntilUnloaded(gdb(UNLOAD, Map.of(), program(root().resolve("fixtures/jit/x86_64").toString())));
    }

    @Test
    void afterUnloadGdbNoLongerFindsFibWithLibLlvmLoaded() throws Exception {
        LlvmTools.requireAvailable(dev.safepointkit.host.LlvmCompiler::open);
        String output = gdb(UNLOAD, Map.of(), program("llvm", root().resolve("fixtures/jit/x86_64").toString()));
        assertTrue(output.contains("libLLVM 19."), output);
        assertFibKnownUntilUnloaded(output);
    }
}
