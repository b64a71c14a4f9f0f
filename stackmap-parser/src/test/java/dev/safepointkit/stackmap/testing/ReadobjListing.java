package dev.safepointkit.stackmap.testing;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What {@code llvm-readobj --stackmap} printed for one file, read back into plain values, so
 * tests can compare the parser with LLVM's own reading field by field (not through our printer).
 */
public record ReadobjListing(String file, String format, String arch, String addressSize, String loadName, int version,
        List<Function> functions, List<String> constants, List<Record> records) {

    public record Function(String address, String stackSize, String recordCount) {
    }

    public record Record(String id, String instructionOffset, List<String> locations, List<String> liveOuts) {
    }

    private static final Pattern FUNCTION = Pattern.compile(
            " {2}Function address: (\\d+), stack size: (\\d+), callsite record count: (\\d+)");
    private static final Pattern CONSTANT = Pattern.compile(" {2}#(\\d+): (\\d+)");
    private static final Pattern RECORD = Pattern.compile(" {2}Record ID: (\\d+), instruction offset: (\\d+)");
    private static final Pattern LOCATIONS = Pattern.compile(" {4}(\\d+) locations:");
    private static final Pattern LOCATION = Pattern.compile(" {6}#(\\d+): (.*)");
    private static final Pattern LIVE_OUTS = Pattern.compile(" {4}(\\d+) live-outs: \\[ (.*)\\]");
    private static final Pattern LIVE_OUT = Pattern.compile("R#(\\d+) \\((\\d+)-bytes\\) ");

    public static ReadobjListing parse(String text) {
        Lines in = new Lines(text);
        in.expect("");
        String file = in.field("File");
        String format = in.field("Format");
        String arch = in.field("Arch");
        String addressSize = in.field("AddressSize");
        // Only ELF files have a LoadName line; Mach-O and COFF listings go straight to the stack map.
        String loadName = in.peekStartsWith("LoadName: ") ? in.field("LoadName") : null;
        int version = Integer.parseInt(in.field("LLVM StackMap Version"));
        int numFunctions = Integer.parseInt(in.field("Num Functions"));
        List<Function> functions = new ArrayList<>();
        for (int i = 0; i < numFunctions; i++) {
            Matcher m = in.match(FUNCTION);
            functions.add(new Function(m.group(1), m.group(2), m.group(3)));
        }
        int numConstants = Integer.parseInt(in.field("Num Constants"));
        List<String> constants = new ArrayList<>();
        for (int i = 0; i < numConstants; i++) {
            Matcher m = in.match(CONSTANT);
            constants.add(m.group(2));
        }
        int numRecords = Integer.parseInt(in.field("Num Records"));
        List<Record> records = new ArrayList<>();
        for (int i = 0; i < numRecords; i++) {
            Matcher r = in.match(RECORD);
            int numLocations = Integer.parseInt(in.match(LOCATIONS).group(1));
            List<String> locations = new ArrayList<>();
            for (int l = 0; l < numLocations; l++) {
                locations.add(in.match(LOCATION).group(2));
            }
            Matcher lo = in.match(LIVE_OUTS);
            List<String> liveOuts = new ArrayList<>();
            Matcher each = LIVE_OUT.matcher(lo.group(2));
            while (each.find()) {
                liveOuts.add(each.group(1) + ":" + each.group(2));
            }
            if (liveOuts.size() != Integer.parseInt(lo.group(1))) {
                throw new IllegalArgumentException("live-out count mismatch in listing: " + lo.group());
            }
            records.add(new Record(r.group(1), r.group(2), locations, liveOuts));
        }
        in.expectEnd();
        return new ReadobjListing(file, format, arch, addressSize, loadName, version, functions, constants, records);
    }

    private static final class Lines {
        private final String[] lines;
        private int next;

        Lines(String text) {
            if (!text.endsWith("\n")) {
                throw new IllegalArgumentException("listing does not end with a newline");
            }
            this.lines = text.substring(0, text.length() - 1).split("\n", -1);
        }

        String line() {
            if (next >= lines.length) {
                throw new IllegalArgumentException("listing ends early after line " + next);
            }
            return lines[next++];
        }

        void expect(String expected) {
            String line = line();
            if (!line.equals(expected)) {
                throw new IllegalArgumentException("line " + next + ": expected '" + expected + "', got '" + line + "'");
            }
        }

        boolean peekStartsWith(String prefix) {
            return next < lines.length && lines[next].startsWith(prefix);
        }

        String field(String name) {
            String line = line();
            if (!line.startsWith(name + ": ")) {
                throw new IllegalArgumentException("line " + next + ": expected '" + name + ": ...', got '" + line + "'");
            }
            return line.substring(name.length() + 2);
        }

        Matcher match(Pattern pattern) {
            String line = line();
            Matcher m = pattern.matcher(line);
            if (!m.matches()) {
                throw new IllegalArgumentException("line " + next + ": '" + line + "' does not match " + pattern);
            }
            return m;
        }

        void expectEnd() {
            if (next != lines.length) {
                throw new IllegalArgumentException("unexpected line " + (next + 1) + ": '" + lines[next] + "'");
            }
        }
    }
}
