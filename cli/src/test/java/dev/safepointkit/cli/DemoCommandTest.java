package dev.safepointkit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** {@code safepointkit demo}: binary-trees on the copying collector, output checked, summary printed. */
class DemoCommandTest {
    private static final Pattern SUMMARY = Pattern.compile(
            "collections: (\\d+), frames walked: (\\d+), roots visited: (\\d+), copied: [0-9.]+ MB\n"
            + "pause p50 [0-9.]+ ms, p99 [0-9.]+ ms, max [0-9.]+ ms; run [0-9.]+ s; output verified\n");

    private static long collections(String stdout) {
        Matcher m = SUMMARY.matcher(stdout);
        assertTrue(m.find(), stdout);
        assertTrue(Long.parseLong(m.group(2)) > 0 && Long.parseLong(m.group(3)) > 0, stdout);
        return Long.parseLong(m.group(1));
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
}
