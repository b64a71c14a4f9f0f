package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventDispatcher;
import dev.safepointkit.events.SourceLine;
import dev.safepointkit.events.perf.JitdumpWriter;
import dev.safepointkit.stackmap.testing.LlvmTools;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

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

    /**
     * The other headers llc writes: DWARF 2 and 4 (inline include_directories and file_names, file
     * indexes from 1) and 64-bit DWARF 5 (8-byte unit_length, header_length and .debug_line_str
     * offsets). Every function's record, countdown's in lines.ll and step's in another directory.
     */
    @ParameterizedTest
    @ValueSource(strings = {"lines-dwarf2", "lines-dwarf4", "lines-dwarf64"})
    void everyFunctionsDebugInfoHasTheRowsDwarfdumpReads(String fixture, @TempDir Path tmp) throws Exception {
        List<Row> expected = dwarfdumpRows(JitFixtures.object(fixture));
        JitdumpWriter writer = JitdumpWriter.inDirectory(tmp);
        List<String> failures = new CopyOnWriteArrayList<>();
        JitEventDispatcher reporting = new JitEventDispatcher((l, event, failure) -> failures.add(event + ": " + failure));
        reporting.add(writer);
        Map<String, List<Row>> written = new HashMap<>();
        Map<String, List<Row>> dwarfdump = new HashMap<>();
        try (JitHost host = new JitHost()) {
            host.addListener(reporting);
            JitObject object = JitFixtures.load(host, fixture);
            assertTrue(object.loaded().lineTableProblem().isEmpty(), () -> object.loaded().lineTableProblem().get());
            long text = object.loaded().section(".text").orElseThrow().address();
            List<PerfListenersTest.Record> records = PerfListenersTest.records(writer.path());
            for (EmittedFunction fn : object.functions()) {
                dwarfdump.put(fn.name(), expected.stream()
                        .filter(r -> text + r.textOffset() >= fn.address() && text + r.textOffset() < fn.address() + fn.size())
                        .toList());
                for (PerfListenersTest.Record record : records) {
                    if (record.id() == JIT_CODE_DEBUG_INFO && record.body().getLong(0) == fn.address()) {
                        assertTrue(written.put(fn.name(), entries(record.body(), text)) == null, "one record for " + fn.name());
                    }
                }
            }
        }
        writer.close();
        assertEquals(List.of(), failures);
        assertEquals(Set.of("countdown", "step"), dwarfdump.keySet());
        assertEquals(dwarfdump, written);
        // What the directory tables give: before DWARF 5, directory 0 (the compilation directory)
        // is not in the line table, so lines.ll is named alone; step.inc's directory is entry 1.
        String countdownFile = fixture.equals("lines-dwarf64") ? "fixtures/jit/src/lines.ll" : "lines.ll";
        assertEquals(Set.of(countdownFile), files(written.get("countdown")));
        assertEquals(Set.of("fixtures/jit/src/include/step.inc"), files(written.get("step")));
    }

    private static Set<String> files(List<Row> rows) {
        assertFalse(rows.isEmpty(), "rows");
        return rows.stream().map(Row::file).collect(Collectors.toSet());
    }

    /** A JIT_CODE_DEBUG_INFO body's entries, addresses made relative to .text. */
    private static List<Row> entries(ByteBuffer body, long text) {
        long count = body.getLong(8);
        body.position(16);
        List<Row> rows = new ArrayList<>();
        for (long i = 0; i < count; i++) {
            long address = body.getLong();
            int line = body.getInt();
            int discriminator = body.getInt();
            rows.add(new Row(address - text, line, discriminator, cstring(body)));
        }
        assertFalse(body.hasRemaining(), "nothing after the entries");
        return rows;
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

    @Test
    void a64BitUnitLengthThatRunsPastItsSectionGivesNoDebugInfoAndIsReported(@TempDir Path tmp) throws Exception {
        // After the 0xffffffff escape, the 8-byte unit_length: its upper half set.
        assertMalformedLineTableIsReported(tmp.resolve("length64"),
                ObjectEditor.of("lines-dwarf64").sectionBytes(".debug_line", 8, 4, 0x7fff_0000L).bytes(),
                "unit_length " + (0x7fff_0000L << 32 | lineU32("lines-dwarf64", 4)) + " runs past the section");
    }

    @Test
    void a64BitHeaderLengthThatRunsPastItsUnitGivesNoDebugInfoAndIsReported(@TempDir Path tmp) throws Exception {
        // A DWARF 5 unit: escape (4), unit_length (8), version (2), address_size, segment_selector_size,
        // then the 8-byte header_length at 16: its upper half set.
        assertMalformedLineTableIsReported(tmp.resolve("header64"),
                ObjectEditor.of("lines-dwarf64").sectionBytes(".debug_line", 20, 4, 1).bytes(),
                "header_length " + (1L << 32 | lineU32("lines-dwarf64", 16)) + " runs past the unit");
    }

    @Test
    void a64BitFileNameOutsideDebugLineStrGivesNoDebugInfoAndIsReported(@TempDir Path tmp) throws Exception {
        // The first R_X86_64_64 of an 8-byte DW_FORM_line_strp now points 4096 bytes past .debug_line_str.
        assertMalformedLineTableIsReported(tmp.resolve("strp64"), ObjectEditor.of("lines-dwarf64")
                .relocationField(".rela.debug_line", 0, ObjectEditor.Field.R_ADDEND, 4096).bytes(), "outside .debug_line_str");
    }

    @Test
    void aReservedUnitLengthGivesNoDebugInfoAndIsReported(@TempDir Path tmp) throws Exception {
        assertMalformedLineTableIsReported(tmp.resolve("reserved"),
                ObjectEditor.of("lines-dwarf4").sectionBytes(".debug_line", 0, 4, 0xffff_fff0L).bytes(),
                "unit_length 0xfffffff0 is a reserved value");
    }

    @Test
    void aDwarf4DirectoryIndexOutsideIncludeDirectoriesGivesNoDebugInfoAndIsReported(@TempDir Path tmp) throws Exception {
        byte[] object = ObjectEditor.of("lines-dwarf4").sectionBytes(".debug_line", stepDirIndexOffset("lines-dwarf4"), 1, 7)
                .bytes();
        assertMalformedLineTableIsReported(tmp.resolve("dir"), object, "directory index 7 of step.inc is not in the table");
    }

    @Test
    void aVliwDwarf4LineTableGivesNoDebugInfoAndIsReported(@TempDir Path tmp) throws Exception {
        // unit_length (4), version (2), header_length (4), minimum_instruction_length, then
        // maximum_operations_per_instruction at 11.
        assertMalformedLineTableIsReported(tmp.resolve("vliw"),
                ObjectEditor.of("lines-dwarf4").sectionBytes(".debug_line", 11, 1, 4).bytes(),
                "maximum_operations_per_instruction 4 is not 1");
    }

    @Test
    void aDwarf4RowOfFileZeroGivesNoDebugInfoAndIsReported(@TempDir Path tmp) throws Exception {
        // Before step's rows the program has DW_LNS_set_file (2) at 0x64 (llvm-dwarfdump-19
        // --debug-line -v shows it); file indexes start at 1 before DWARF 5, so 0 names no file.
        assertEquals(0x0204, lineU32("lines-dwarf4", 0x64) & 0xffff, "DW_LNS_set_file 2 at 0x64");
        assertMalformedLineTableIsReported(tmp.resolve("file0"),
                ObjectEditor.of("lines-dwarf4").sectionBytes(".debug_line", 0x65, 1, 0).bytes(),
                "file index 0 is not in the table");
    }

    @Test
    void aDwarf4DefineFileNamesAFileInTheDirectoryItGives() throws Exception {
        // llc writes no DW_LNE_define_file, so one replaces step's 11 bytes of line program at 0x64
        // (set_file 2 ... advance_pc 1), up to its end_sequence: define_file "x" in directory 1,
        // set_file 3, copy. countdown's rows end with one more, at the same address, in that file.
        byte[] object = JitFixtures.bytes("lines-dwarf4");
        int program = (int) ObjectEditor.of("lines-dwarf4").section(".debug_line").offset() + 0x64;
        assertEquals("040205050a0375584b020100 0101".replace(" ", ""), hex(object, program, 14), "step's program at 0x64");
        byte[] edited = ObjectEditor.of("lines-dwarf4")
                .sectionBytes(".debug_line", 0x64, 8, 0x0000_0100_7803_0600L) // 00 06 03 'x' 00 01 00 00
                .sectionBytes(".debug_line", 0x6c, 2, 0x0304) // DW_LNS_set_file 3
                .sectionBytes(".debug_line", 0x6e, 1, 0x01) // DW_LNS_copy
                .bytes();
        try (JitHost host = new JitHost()) {
            JitObject loaded = host.load("define-file.o", MemorySegment.ofArray(edited));
            assertTrue(loaded.loaded().lineTableProblem().isEmpty(), () -> loaded.loaded().lineTableProblem().get());
            long text = loaded.loaded().section(".text").orElseThrow().address();
            EmittedFunction countdown = loaded.functions().stream().filter(f -> f.name().equals("countdown")).findFirst()
                    .orElseThrow();
            EmittedFunction step = loaded.functions().stream().filter(f -> f.name().equals("step")).findFirst().orElseThrow();
            assertEquals(new SourceLine(text + 0x1b, "fixtures/jit/src/include/x", 15, 0), countdown.lines().getLast());
            assertEquals(new SourceLine(text + 0x1b, "lines.ll", 15, 0),
                    countdown.lines().get(countdown.lines().size() - 2));
            assertEquals(List.of(), step.lines());
        }
    }

    @Test
    void aDwarf5DirectoryIndexThatIsNoConstantGivesNoDebugInfoAndIsReported(@TempDir Path tmp) throws Exception {
        // file_name_entry_format's DW_LNCT_directory_index form at 0x42 of the 64-bit unit, DW_FORM_udata
        // in the fixture, made DW_FORM_string: the first file's directory index (byte 0) reads as "".
        assertEquals(0x0f, lineU32("lines-dwarf64", 0x42) & 0xff, "DW_FORM_udata at 0x42");
        assertMalformedLineTableIsReported(tmp.resolve("dirform"),
                ObjectEditor.of("lines-dwarf64").sectionBytes(".debug_line", 0x42, 1, 0x08).bytes(),
                "directory index \"\" is not a constant");
    }

    private static String hex(byte[] bytes, int from, int length) {
        StringBuilder out = new StringBuilder();
        for (int i = from; i < from + length; i++) {
            out.append(String.format("%02x", bytes[i] & 0xff));
        }
        return out.toString();
    }

    /** The fixture's 4-byte little-endian field at {@code offset} of its .debug_line. */
    private static long lineU32(String fixture, int offset) throws Exception {
        long at = ObjectEditor.of(fixture).section(".debug_line").offset() + offset;
        return ByteBuffer.wrap(JitFixtures.bytes(fixture)).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt((int) at) & 0xffff_ffffL;
    }

    /** Where step.inc's directory index is in the fixture's .debug_line: the byte after its name's NUL. */
    private static int stepDirIndexOffset(String fixture) throws Exception {
        ObjectEditor editor = ObjectEditor.of(fixture);
        byte[] object = JitFixtures.bytes(fixture);
        var section = editor.section(".debug_line");
        String text = new String(object, (int) section.offset(), (int) section.size(), StandardCharsets.ISO_8859_1);
        int name = text.indexOf("step.inc\0");
        assertTrue(name > 0 && text.indexOf("step.inc\0", name + 1) < 0, "step.inc once in .debug_line");
        return name + "step.inc\0".length();
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
        assertEquals(1, Pattern.compile("(?m)^debug_line\\[0x").matcher(out).results().count(), "one line table unit:\n" + out);
        // By the index dwarfdump prints: from 0 in DWARF 5, from 1 before, where directory 0 is the
        // compilation directory, which the line table leaves out (so a file in it is its name alone).
        Map<Integer, String> dirs = new HashMap<>();
        Matcher d = Pattern.compile("include_directories\\[\\s*(\\d+)\\] = \"([^\"]*)\"").matcher(out);
        while (d.find()) {
            dirs.put(Integer.parseInt(d.group(1)), d.group(2));
        }
        boolean dwarf5 = Pattern.compile("(?m)^\\s+version: 5$").matcher(out).find();
        Map<Integer, String> files = new HashMap<>();
        Matcher f = Pattern.compile("file_names\\[\\s*(\\d+)\\]:\\s+name: \"([^\"]*)\"\\s+dir_index: (\\d+)").matcher(out);
        while (f.find()) {
            int dirIndex = Integer.parseInt(f.group(3));
            String dir = dirIndex == 0 && !dwarf5 ? "" : dirs.get(dirIndex);
            assertTrue(dir != null, "directory " + dirIndex + " of " + f.group(2) + " in\n" + out);
            files.put(Integer.parseInt(f.group(1)),
                    dir.isEmpty() || f.group(2).startsWith("/") ? f.group(2) : dir + "/" + f.group(2));
        }
        assertFalse(files.isEmpty(), out);
        List<Row> rows = new ArrayList<>();
        Matcher r = Pattern.compile("(?m)^0x([0-9a-f]{16})\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s*(.*)$").matcher(out);
        while (r.find()) {
            if (r.group(8).contains("end_sequence")) {
                continue;
            }
            String file = files.get(Integer.parseInt(r.group(4)));
            assertTrue(file != null, "file " + r.group(4) + " of row " + r.group() + " in\n" + out);
            rows.add(new Row(Long.parseUnsignedLong(r.group(1), 16), Integer.parseInt(r.group(2)),
                    Integer.parseInt(r.group(6)), file));
        }
        return rows;
    }
}
