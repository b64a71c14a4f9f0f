package dev.safepointkit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.testing.Fixtures;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code safepointkit demo}: binary-trees on the copying collector, output checked, summary printed. */
class DemoCommandTest {
    private static final Pattern SUMMARY = Pattern.compile(
            "collections: (\\d+), frames walked: (\\d+), roots visited: (\\d+) \\((\\d+) in callee-saved registers above"
            + " the poll\\), copied: [0-9.]+ MB\n"
            + "pause p50 [0-9.]+ ms, p99 [0-9.]+ ms, max [0-9.]+ ms; run [0-9.]+ s; output verified\n");

    private static long collections(String stdout) {
        Matcher m = SUMMARY.matcher(stdout);
        assertTrue(m.find(), stdout);
        assertTrue(Long.parseLong(m.group(2)) > 0 && Long.parseLong(m.group(3)) > 0, stdout);
        return Long.parseLong(m.group(1));
    }

    private static long registerRoots(String stdout) {
        Matcher m = SUMMARY.matcher(stdout);
        assertTrue(m.find(), stdout);
        return Long.parseLong(m.group(4));
    }

    @Test
    void printsTheProgramsOutputAndWhatTheCollectorDid() {
        String[] r = CliRunner.run("demo", "--depth", "10", "--threads", "4", "--heap-mb", "1");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].startsWith("""
                stretch tree of depth 11\t check: 4095
                1024\t trees of depth 4\t check: 31744
                256\t trees of depth 6\t check: 32512
                64\t trees of depth 8\t check: 32704
                16\t trees of depth 10\t check: 32752
                long lived tree of depth 10\t check: 2047

                """), r[1]);
        assertTrue(collections(r[1]) > 0, r[1]);
        assertTrue(r[2].contains("demo: depth 10 of 10 done"), "progress on stderr: " + r[2]);
    }

    @Test
    void theStressModeCollectsAtEveryPoll() {
        String[] r = CliRunner.run("demo", "--depth", "6", "--threads", "2", "--gc-stress");
        assertEquals("0", r[0], r[2]);
        // Every call of bottom_up_tree and item_check polls: thousands of collections.
        assertTrue(collections(r[1]) > 1000, r[1]);
    }

    @Test
    void gcPointersInCalleeSavedRegistersUnderCollectionsAtEveryPollAreVerifiedAndAgreeWithTheProcessUnwinder() {
        String[] plain = CliRunner.run("demo", "--depth", "6", "--threads", "2", "--gc-stress");
        assertEquals("0", plain[0], plain[2]);
        assertEquals(0, registerRoots(plain[1]), "binarytrees.o spills its GC pointers: " + plain[1]);
        String[] r = CliRunner.run("demo", "--gc-regs", "--gc-stress", "--check-unwind", "--depth", "6", "--threads", "2");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].startsWith("""
                stretch tree of depth 7\t check: 255
                64\t trees of depth 4\t check: 1984
                16\t trees of depth 6\t check: 2032
                long lived tree of depth 6\t check: 127

                """), r[1]);
        long collections = collections(r[1]);
        assertTrue(collections > 1000, r[1]);
        assertTrue(registerRoots(r[1]) > collections, "roots in callee-saved registers above the poll: " + r[1]);
        // Every collection walks at least one run of JIT frames, and each was compared.
        Matcher checked = Pattern.compile("unwind cross-check: (\\d+) runs of JIT frames compared").matcher(r[1]);
        assertTrue(checked.find(), r[1]);
        assertTrue(Long.parseLong(checked.group(1)) >= collections, r[1]);
        assertFalse(plain[1].contains("unwind cross-check"), "no check asked for: " + plain[1]);
        CliRunner.assertOneLineError(CliRunner.run("demo", "--gc-regs", "--compile"), 2,
                "safepointkit demo: --gc-regs runs the bundled object; it does not combine with --compile");
    }

    @Test
    void nestedRunsUnderCollectionsAtEveryPollAreVerified() {
        String[] r = CliRunner.run("demo", "--nested", "--gc-stress", "--depth", "8", "--threads", "2");
        assertEquals("0", r[0], r[2]);
        assertTrue(collections(r[1]) > 1000, r[1]);
    }

    @ParameterizedTest
    @CsvSource({
        "--depth, 25, 0 to 24", "--depth, -3, 0 to 24",
        "--threads, 0, 1 to 64", "--threads, 65, 1 to 64",
        "--heap-mb, 0, 1 to 4096", "--heap-mb, -1, 1 to 4096", "--heap-mb, 100000, 1 to 4096"})
    void anOutOfRangeValueIsOneUsageLine(String option, String value, String range) {
        CliRunner.assertOneLineError(CliRunner.run("demo", option, value), 2,
                "safepointkit demo: " + option + " " + value + " is out of range (" + range + ") (see 'safepointkit demo --help')");
    }

    @Test
    void helpStatesEveryRange() {
        String[] r = CliRunner.run("demo", "--help");
        assertEquals("0", r[0], r[2]);
        String help = r[1].replaceAll("\\s+", " ");
        for (String range : new String[] {"0 to 24", "1 to 64", "1 to 4096"}) {
            assertTrue(help.contains(range), range + " in " + r[1]);
        }
    }

    @Test
    void aNumberThatIsNoNumberAndAnUnknownOptionAreOneUsageLine() {
        CliRunner.assertOneLineError(CliRunner.run("demo", "--depth", "deep"), 2, "safepointkit demo: Invalid value for option '--depth'");
        CliRunner.assertOneLineError(CliRunner.run("demo", "--deepth", "3"), 2, "safepointkit demo: Unknown option");
    }

    @Test
    void compilingWithoutLibllvmIsOneLineNamingWhereItLooked() {
        CliRunner.assertOneLineError(CliRunner.run("demo", "--compile", "--llvm-lib", "/nonexistent/libLLVM.so.19.1"), 1,
                "safepointkit demo: libLLVM 19 not found at /nonexistent/libLLVM.so.19.1 (given path): no such file; "
                + "install it with 'apt-get install libllvm19'");
        CliRunner.assertOneLineError(CliRunner.run("demo", "--llvm-lib", "/usr/lib/libLLVM.so"), 2,
                "safepointkit demo: --llvm-lib is only used with --compile");
        String dir = System.getProperty("java.io.tmpdir");
        CliRunner.assertOneLineError(CliRunner.run("demo", "--compile", "--llvm-lib", dir), 1,
                "safepointkit demo: cannot use " + dir + " (given path) as libLLVM 19: it is a directory");
        String notElf = Fixtures.projectRoot().resolve("README.md").toString();
        CliRunner.assertOneLineError(CliRunner.run("demo", "--compile", "--llvm-lib", notElf), 1,
                "safepointkit demo: cannot use " + notElf + " (given path) as libLLVM 19: it is not an ELF shared library");
    }
}
