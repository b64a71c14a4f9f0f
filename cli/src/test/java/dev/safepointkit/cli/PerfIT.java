package dev.safepointkit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * perf from the image profiling JIT code in a JVM, as README's "Profiling JIT code with perf"
 * tells a user to: {@code perf record -k mono --call-graph dwarf} of bin/safepointkit running
 * chain.o's call chain (and chain-tail.o's, the same chain before a function off an 8-byte
 * boundary) with {@code --jitdump}, {@code perf inject --jit}, then what
 * {@code perf script} and {@code perf report} print. Skipped without perf, or where the kernel
 * lets this user sample nothing, on a developer's machine; failed for either in CI.
 */
class PerfIT {
    /** chain_top's argument: 64 leaf calls of this many steps, about half a second. */
    private static final long STEPS = 5_000_000;
    /** One frame of {@code perf script -F ip,sym,dso}: address, symbol, file. */
    private static final Pattern FRAME = Pattern.compile("^\\s*(\\p{XDigit}+) (.*) \\((.*)\\)$");
    private static final Pattern JITTED = Pattern.compile(".*/jitted-\\d+-\\d+\\.so");

    @TempDir
    Path temp;

    /** Runs {@code command} in {@link #temp}; returns its stdout, failing with both outputs when it exits non-zero. */
    private String run(List<String> command) throws IOException, InterruptedException {
        Path out = Files.createTempFile(temp, "out", ".txt");
        Path err = Files.createTempFile(temp, "err", ".txt");
        ProcessBuilder pb = new ProcessBuilder(command).directory(temp.toFile());
        pb.environment().put("SAFEPOINTKIT_NO_BUILD", "1");
        pb.environment().put("TMPDIR", temp.toString());
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            throw new AssertionError(command + " did not finish in 120 s");
        }
        String stdout = Files.readString(out, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), () -> command + " failed:\n" + stdout + readQuietly(err));
        return stdout;
    }

    private static String readQuietly(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(" + file + " unreadable: " + e + ")";
        }
    }

    /** perf, able to sample this process's children; skips (fails in CI) otherwise. */
    private Path perf() throws IOException, InterruptedException {
        Path perf = LlvmTools.requireProgram("perf", "apt-get install linux-perf");
        Path probe = temp.resolve("probe.data");
        Process p = new ProcessBuilder(perf.toString(), "record", "-q", "-k", "mono", "-o", probe.toString(), "--", "true")
                .redirectErrorStream(true).redirectOutput(temp.resolve("probe.txt").toFile()).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
        }
        if (p.exitValue() != 0) {
            String paranoid = readQuietly(Path.of("/proc/sys/kernel/perf_event_paranoid")).strip();
            LlvmTools.requireAvailable(() -> {
                throw new IllegalStateException("perf record cannot sample here (kernel.perf_event_paranoid = " + paranoid
                        + "; it needs 2 or less, or root): " + readQuietly(temp.resolve("probe.txt")).strip());
            });
        }
        return perf;
    }

    /** What chain.ll computes: chain_top(n). */
    private static long chainTop(long n) {
        long h = 1;
        for (long i = 0; i < n; i++) {
            h = h * 6364136223846793005L + i;
        }
        long acc = 0;
        for (long k = 0; k < 64; k++) {
            acc = (acc ^ h) + k;
        }
        return acc + 1;
    }

    /** Each sample's frames as (symbol, file) pairs, innermost first. */
    private static List<List<String[]>> stacks(String script) {
        List<List<String[]>> stacks = new ArrayList<>();
        List<String[]> current = new ArrayList<>();
        for (String line : script.split("\n", -1)) {
            Matcher m = FRAME.matcher(line);
            if (m.matches()) {
                current.add(new String[] {m.group(2), m.group(3)});
            } else if (line.isBlank() && !current.isEmpty()) {
                stacks.add(current);
                current = new ArrayList<>();
            }
        }
        if (!current.isEmpty()) {
            stacks.add(current);
        }
        return stacks;
    }

    @Test
    void perfUnwindsEveryJitFunctionOfAnObjectToItsJitCaller() throws Exception {
        assertLeafSamplesUnwindToTheTop("chain");
    }

    /**
     * chain-tail.o: the same chain, then a minsize function off an 8-byte boundary, whose own
     * unwinding data perf maps last: the chain's functions must still unwind.
     */
    @Test
    void perfUnwindsTheChainWhenTheObjectsLastFunctionHasItsOwnUnwindingData() throws Exception {
        assertLeafSamplesUnwindToTheTop("chain-tail");
    }

    private void assertLeafSamplesUnwindToTheTop(String fixture) throws Exception {
        Path perf = perf();
        Path root = Fixtures.projectRoot();
        Path jitdump = Files.createDirectories(temp.resolve("jitdump"));
        Path data = temp.resolve("perf.data");
        Path injected = temp.resolve("perf.jit.data");
        String output = run(List.of(perf.toString(), "record", "-q", "-F", "999", "-k", "mono", "--call-graph", "dwarf",
                "-o", data.toString(), "--", "/bin/bash", root.resolve("bin/safepointkit").toString(), "run", "--jitdump",
                jitdump.toString(), "--call", "chain_top", "--arg", Long.toString(STEPS),
                root.resolve("fixtures/jit/x86_64/" + fixture + ".o").toString()));
        assertTrue(output.contains("chain_top(" + STEPS + ") = " + chainTop(STEPS)), output);
        run(List.of(perf.toString(), "inject", "--jit", "-i", data.toString(), "-o", injected.toString()));

        // The plain report names the leaf, where the time goes, in the jitted code.
        String report = run(List.of(perf.toString(), "report", "-i", injected.toString(), "--stdio", "--no-children",
                "-g", "none", "--comm", "java", "--sort", "dso,sym"));
        assertTrue(Pattern.compile("(?m)jitted-\\d+-\\d+\\.so +\\[\\.\\] chain_leaf$").matcher(report).find(), report);

        // Each sample in the leaf: is it unwound to the middle, and the middle to the top, each
        // frame named in a jitted file? Each step reads another function's unwinding data.
        // --no-inline: resolving the JVM's inlined frames runs addr2line over libjvm.so, for seconds.
        String script = run(List.of(perf.toString(), "script", "--no-inline", "-i", injected.toString(), "--comm", "java",
                "-F", "ip,sym,dso"));
        int inLeaf = 0;
        int chains = 0;
        Map<String, Integer> callers = new TreeMap<>();
        for (List<String[]> stack : stacks(script)) {
            if (!stack.getFirst()[0].equals("chain_leaf")) {
                continue;
            }
            inLeaf++;
            callers.merge(stack.size() > 1 ? stack.get(1)[0] : "(none)", 1, Integer::sum);
            if (stack.size() >= 3 && stack.get(1)[0].equals("chain_middle") && stack.get(2)[0].equals("chain_top")
                    && stack.subList(0, 3).stream().allMatch(f -> JITTED.matcher(f[1]).matches())) {
                chains++;
            }
        }
        String summary = fixture + ".o: " + inLeaf + " samples in chain_leaf, " + chains + " unwound to chain_middle then chain_top; the leaf's callers: "
                + callers;
        assertTrue(inLeaf >= 50, summary);
        // Unwinding fails for a sample now and then (libunwind and perf's stack copy); a layout
        // that perf reads wrongly fails it for all.
        assertTrue(chains * 10 >= inLeaf * 9, summary);
    }
}
