package dev.safepointkit.stress.ttsp;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.HdrHistogram.Histogram;

/**
 * Reads HotSpot's {@code -Xlog:safepoint} lines: for every safepoint of one operation, the time
 * to reach it ("Reaching safepoint") and its total ("Total": reaching, the operation, leaving).
 * Fails closed: a line of that operation whose times cannot be read, or a count other than the
 * one expected, is an error naming it.
 *
 * <p>Stateless; any thread.
 */
public final class SafepointLog {
    private static final Pattern LINE = Pattern.compile(
            "Safepoint \"([^\"]+)\", Time since last: \\d+ ns, Reaching safepoint: (\\d+) ns, .*Total: (\\d+) ns");

    private SafepointLog() {
    }

    /** The times in nanoseconds of the measured safepoints. */
    public record Times(Histogram reaching, Histogram total) {}

    /**
     * The times of the safepoints of {@code operation} in {@code lines}, skipping the first {@code skip}.
     *
     * @throws IllegalArgumentException when a line of {@code operation} has no readable times, or
     *     there are not exactly {@code skip + expected} of them
     */
    public static Times parse(List<String> lines, String operation, int skip, int expected) {
        Histogram reaching = new Histogram(3);
        Histogram total = new Histogram(3);
        String marker = "Safepoint \"" + operation + "\"";
        int seen = 0;
        for (String line : lines) {
            if (!line.contains(marker)) {
                continue;
            }
            Matcher m = LINE.matcher(line);
            if (!m.find() || !m.group(1).equals(operation)) {
                throw new IllegalArgumentException("a " + operation + " safepoint line without readable times: " + line);
            }
            if (seen++ >= skip) {
                reaching.recordValue(Long.parseLong(m.group(2)));
                total.recordValue(Long.parseLong(m.group(3)));
            }
        }
        if (seen != skip + expected) {
            throw new IllegalArgumentException("the log has " + seen + " " + operation + " safepoints, not "
                    + (skip + expected) + " (" + skip + " warm-up and " + expected + " measured)");
        }
        return new Times(reaching, total);
    }
}
