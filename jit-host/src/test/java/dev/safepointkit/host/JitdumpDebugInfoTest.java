package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventDispatcher;
import dev.safepointkit.events.perf.JitdumpWriter;
import dev.safepointkit.stackmap.testing.LlvmTools;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * JIT_CODE_DEBUG_INFO records from an object's {@code .debug_line}, checked against what
 * {@code llvm-dwarfdump-19 --debug-line} reads from the same object file.
 */
class JitdumpDebugInfoTest {
    private static final int JIT_CODE_LOAD = 0;
    private static final int JIT_CODE_DEBUG_INFO = 2;

    /** One expected entry: address relative to .text, line, discriminator, file. */
    record Row(long textOffset, int line, int discriminator, String file) {
    }

    @Test
    void debugInfoRecordComesBeforeFibsLoadWithTheRowsDwarfdumpReads(@TempDir Path tmp) throws Exception {
        List<Row> expected = dwarfdumpRows(JitFixtures.object("debug"));
        assertFalse(expected.isEmpty(), "llvm-dwarfdump found rows in debug.o");
        JitdumpWriter writer = JitdumpWriter.inDirectory(tmp);
        List<String> failures = new CopyOnWriteArrayList<>();
        JitEventDispatcher reporting = new JitEventDispatcher((l, event, failure) -> failures.add(event + ": " + failure));
        reporting.add(writer);
        try (JitHost host = new JitHost()) {
            host.addListener(reporting);
            JitObject object = JitFixtures.load(host, "debug");
            assertTrue(object.loaded().lineTableProblem().isEmpty(), () -> object.loaded().lineTableProblem().get());
            EmittedFunction fib = object.functions().stream().filter(f -> f.name().equals("fib")).findFirst().orElseThrow();
            long text = object.loaded().section(".text").orElseThrow().address();
            List<PerfListenersTest.Record> records = PerfListenersTest.records(writer.path());
            int load = -1;
            for (int i = 0; i < records.size(); i++) {
                if (records.get(i).id() == JIT_CODE_LOAD && records.get(i).body().getLong(16) == fib.address()) {
                    load = i;
                }
            }
            assertTrue(load >= 0, "fib's JIT_CODE_LOAD");
            PerfListenersTest.Record debug = null;
            for (int i = load - 1; i >= 0 && records.get(i).id() != JIT_CODE_LOAD; i--) {
                if (records.get(i).id() == JIT_CODE_DEBUG_INFO) {
                    debug = records.get(i);
                }
            }
            assertTrue(debug != null, "a JIT_CODE_DEBUG_INFO record before fib's JIT_CODE_LOAD");
            ByteBuffer body = debug.body();
            assertEquals(fib.address(), body.getLong(0), "code_addr");
            List<Row> inFib = expected.stream()
                    .filter(r -> text + r.textOffset() >= fib.address() && text + r.textOffset() < fib.address() + fib.size())
                    .toList();
            assertFalse(inFib.isEmpty(), "dwarfdump rows inside fib");
            assertEquals(inFib.size(), body.getLong(8), "nr_entry");
            body.position(16);
            for (Row row : inFib) {
                assertEquals(text + row.textOffset(), body.getLong(), "entry address for " + row);
                assertEquals(row.line(), body.getInt(), "line for " + row);
                assertEquals(row.discriminator(), body.getInt(), "discriminator for " + row);
                assertEquals(row.file(), cstring(body), "file for " + row);
            }
            assertFalse(body.hasRemaining(), "nothing after the entries");
        }
        writer.close();
        assertEquals(List.of(), failures);
    }

    @Test
    void aLineTableThatRunsPastItsSectionGivesNoDebugInfoAndIsReported(@TempDir Path tmp) throws Exception {
        assertMalformedLineTableIsReported(tmp.resolve("length"),
                ObjectEditor.of("debug").sectionBytes(".debug_line", 0, 4, 0x7fff_0000L).bytes(), "runs past the section");
    }

    @Test
    void aFileNameOutsideDebugLineStrGivesNoDebugInfoAndIsReported(@TempDir Path tmp) throws Exception {
        // The relocation of the first DW_FORM_line_strp now points 4096 bytes past .debug_line_str.
        assertMalformedLineTableIsReported(tmp.resolve("strp"), ObjectEditor.of("debug")
                .relocationField(".rela.debug_line", 0, ObjectEditor.Field.R_ADDEND, 4096).bytes(), "outside .debug_line_str");
    }

    private static void assertMalformedLineTableIsReported(Path dir, byte[] object, String why) throws Exception {
        JitdumpWriter writer = JitdumpWriter.inDirectory(Files.createDirectories(dir));
        List<String> failures = new CopyOnWriteArrayList<>();
        JitEventDispatcher reporting = new JitEventDispatcher((l, event, failure) -> failures.add(event + ": " + failure.getMessage()));
        reporting.add(writer);
        try (JitHost host = new JitHost()) {
            host.addListener(reporting);
            JitObject loaded = host.load("bad-lines.o", MemorySegment.ofArray(object));
            assertTrue(loaded.loaded().lineTableProblem().orElseThrow().contains(why), loaded.loaded().lineTableProblem().get());
            assertTrue(loaded.functions().stream().allMatch(f -> f.lines().isEmpty()), "no function has lines");
            List<PerfListenersTest.Record> records = PerfListenersTest.records(writer.path());
            assertTrue(records.stream().noneMatch(r -> r.id() == JIT_CODE_DEBUG_INFO), "no JIT_CODE_DEBUG_INFO");
            assertEquals(loaded.functions().size(), records.stream().filter(r -> r.id() == JIT_CODE_LOAD).count(),
                    "every function's JIT_CODE_LOAD is still written");
            assertEquals(1, failures.size(), failures::toString);
            assertTrue(failures.get(0).startsWith("functionEmitted: no JIT_CODE_DEBUG_INFO for bad-lines.o"), failures.get(0));
            assertTrue(failures.get(0).contains(why), failures.get(0));
        }
        writer.close();
    }

    private static String cstring(ByteBuffer in) {
        int start = in.position();
        while (in.get() != 0) {
            // scan to the NUL
        }
        return new String(in.array(), in.arrayOffset() + start, in.position() - 1 - start, StandardCharsets.UTF_8);
    }

    /** The rows llvm-dwarfdump reads from the object's line table, end_sequence rows left out. */
    static List<Row> dwarfdumpRows(Path object) throws Exception {
        Path tool = LlvmTools.require("llvm-dwarfdump-19");
        Process p = new ProcessBuilder(tool.toString(), "--debug-line", object.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "llvm-dwarfdump finished");
        assertEquals(0, p.exitValue(), out);
        List<String> dirs = new ArrayList<>();
        Matcher d = Pattern.compile("include_directories\\[\\s*(\\d+)\\] = \"([^\"]*)\"").matcher(out);
        while (d.find()) {
            dirs.add(d.group(2));
        }
        List<String> files = new ArrayList<>();
        Matcher f = Pattern.compile("file_names\\[\\s*(\\d+)\\]:\\s+name: \"([^\"]*)\"\\s+dir_index: (\\d+)").matcher(out);
        while (f.find()) {
            String dir = dirs.get(Integer.parseInt(f.group(3)));
            files.add(dir.isEmpty() || f.group(2).startsWith("/") ? f.group(2) : dir + "/" + f.group(2));
        }
        assertFalse(files.isEmpty(), out);
        List<Row> rows = new ArrayList<>();
        Matcher r = Pattern.compile("(?m)^0x([0-9a-f]{16})\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s*(.*)$").matcher(out);
        while (r.find()) {
            if (r.group(8).contains("end_sequence")) {
                continue;
            }
            rows.add(new Row(Long.parseUnsignedLong(r.group(1), 16), Integer.parseInt(r.group(2)),
                    Integer.parseInt(r.group(6)), files.get(Integer.parseInt(r.group(4)))));
        }
        return rows;
    }
}
