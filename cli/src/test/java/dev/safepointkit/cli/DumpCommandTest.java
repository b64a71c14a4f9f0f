package dev.safepointkit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.LlvmTools;
import dev.safepointkit.stackmap.testing.ReadobjListing;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** {@code safepointkit dump} against llvm-readobj-19, recorded and live. */
class DumpCommandTest {

    record Result(int status, String out, String err) {
    }

    static Result dump(Path workingDirectory, boolean symbols, boolean json, String... files) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = DumpCommand.run(List.of(files), symbols, json, workingDirectory,
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    static Stream<Path> objects() {
        return Fixtures.objects().stream();
    }

    private static boolean isLinked(Path object) {
        return object.toString().endsWith(".so");
    }

    @ParameterizedTest
    @MethodSource("objects")
    void printsWhatLlvmReadobjPrintedByteForByte(Path object) {
        Path dir = Fixtures.stackMapFixtures().resolve(object).getParent();
        Result r = dump(dir, false, false, object.getFileName().toString());
        assertEquals(0, r.status(), r.err());
        assertEquals("", r.err());
        String expected = Fixtures.expectedListing(object);
        if (isLinked(object)) {
            // llvm-readobj stops after the first stack map; dump goes on with the second.
            assertTrue(r.out().startsWith(expected), "the first stack map is printed as llvm-readobj prints it");
            String rest = r.out().substring(expected.length());
            assertTrue(rest.startsWith("LLVM StackMap Version: 3\nNum Functions: 4\n"), rest);
            assertEquals(2, r.out().split("LLVM StackMap Version", -1).length - 1);
        } else {
            assertEquals(expected, r.out());
        }
    }

    @Test
    void matchesLlvmReadobjRunLiveOnAllFixturesAtOnce() throws Exception {
        Path readobj = LlvmTools.require("llvm-readobj-19");
        List<String> args = new ArrayList<>();
        for (Path object : Fixtures.objects()) {
            if (!isLinked(object)) {
                args.add(object.toString());
            }
        }
        List<String> command = new ArrayList<>(List.of(readobj.toString(), "--stackmap"));
        command.addAll(args);
        Process p = new ProcessBuilder(command).directory(Fixtures.stackMapFixtures().toFile())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String live = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(1, TimeUnit.MINUTES));
        assertEquals(0, p.exitValue());
        Result ours = dump(Fixtures.stackMapFixtures(), false, false, args.toArray(String[]::new));
        assertEquals(0, ours.status(), ours.err());
        assertEquals(live, ours.out());
    }

    @Test
    void matchesLlvmReadobjOnAHundredThousandRecordsOfLlcOutput(@TempDir Path tmp) throws Exception {
        Path readobj = LlvmTools.require("llvm-readobj-19");
        LlvmTools.require("llc-19");
        Process gen = new ProcessBuilder("bash", Fixtures.projectRoot().resolve("scripts/gen-large-stackmap.sh").toString(),
                tmp.toString()).redirectErrorStream(true).start();
        String log = new String(gen.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(gen.waitFor(5, TimeUnit.MINUTES) && gen.exitValue() == 0, log);
        Process p = new ProcessBuilder(readobj.toString(), "--stackmap", "large.o").directory(tmp.toFile())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        byte[] live = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(2, TimeUnit.MINUTES));
        Result ours = dump(tmp, false, false, "large.o");
        assertEquals(0, ours.status(), ours.err());
        assertTrue(ours.out().contains("Num Records: 102400\n"));
        assertEquals(new String(live, StandardCharsets.UTF_8), ours.out());
    }

    @ParameterizedTest
    @MethodSource("objects")
    void symbolsAddTheFunctionNameAndChangeNothingElse(Path object) {
        Path dir = Fixtures.stackMapFixtures().resolve(object).getParent();
        String name = object.getFileName().toString();
        String plain = dump(dir, false, false, name).out();
        Result withSymbols = dump(dir, true, false, name);
        assertEquals(0, withSymbols.status());
        List<String> names = new ArrayList<>();
        StringBuilder stripped = new StringBuilder();
        for (String line : withSymbols.out().split("\n", -1)) {
            int at = line.indexOf(", symbol: ");
            if (line.startsWith("  Function address: ")) {
                assertTrue(at > 0, line);
                names.add(line.substring(at + ", symbol: ".length()));
                line = line.substring(0, at);
            }
            stripped.append(line).append('\n');
        }
        assertEquals(plain + "\n", stripped.toString());
        List<String> expected = new ArrayList<>();
        if (isLinked(object)) {
            expected.addAll(Fixtures.definedFunctions("stackmaps.ll"));
            expected.addAll(Fixtures.definedFunctions("statepoints.ll"));
        } else {
            expected.addAll(Fixtures.definedFunctions(Fixtures.sourceOf(object)));
        }
        assertEquals(expected, names);
    }

    @ParameterizedTest
    @MethodSource("objects")
    void jsonCarriesTheSameContent(Path object) throws Exception {
        Path dir = Fixtures.stackMapFixtures().resolve(object).getParent();
        Result r = dump(dir, false, true, object.getFileName().toString());
        assertEquals(0, r.status(), r.err());
        JsonNode files = new ObjectMapper().readTree(r.out());
        assertEquals(1, files.size());
        JsonNode file = files.get(0);
        ReadobjListing expected = ReadobjListing.parse(Fixtures.expectedListing(object));
        assertEquals(expected.format(), file.get("format").asText());
        assertEquals(expected.arch(), file.get("arch").asText());
        assertEquals(isLinked(object) ? 2 : 1, file.get("stackMaps").size());
        JsonNode map = file.get("stackMaps").get(0);
        assertEquals(expected.functions().size(), map.get("functions").size());
        for (int f = 0; f < expected.functions().size(); f++) {
            JsonNode fn = map.get("functions").get(f);
            assertEquals(expected.functions().get(f).address(), fn.get("address").bigIntegerValue().toString());
            assertEquals(expected.functions().get(f).stackSize(), fn.get("stackSize").bigIntegerValue().toString());
            assertEquals(expected.functions().get(f).stackSize().equals("18446744073709551615"),
                    fn.get("dynamicStackSize").asBoolean());
            assertTrue(fn.get("symbol").isTextual());
        }
        for (int c = 0; c < expected.constants().size(); c++) {
            assertEquals(expected.constants().get(c), map.get("constants").get(c).bigIntegerValue().toString());
        }
        assertEquals(expected.records().size(), map.get("records").size());
        for (int r2 = 0; r2 < expected.records().size(); r2++) {
            ReadobjListing.Record want = expected.records().get(r2);
            JsonNode rec = map.get("records").get(r2);
            assertEquals(want.id(), rec.get("id").bigIntegerValue().toString());
            assertEquals(want.instructionOffset(), rec.get("instructionOffset").asText());
            assertEquals(want.locations().size(), rec.get("locations").size());
            for (int l = 0; l < want.locations().size(); l++) {
                JsonNode loc = rec.get("locations").get(l);
                String listed = want.locations().get(l);
                assertTrue(listed.startsWith(loc.get("kind").asText()), listed + " vs " + loc);
                assertTrue(listed.endsWith(", size: " + loc.get("size").asInt()), listed + " vs " + loc);
                if (loc.has("dwarfReg")) {
                    assertTrue(listed.contains("R#" + loc.get("dwarfReg").asInt()), listed + " vs " + loc);
                }
                if (loc.get("kind").asText().equals("Constant")) {
                    assertEquals(listed, "Constant " + Integer.toUnsignedString(loc.get("value").asInt()) + ", size: "
                            + loc.get("size").asInt());
                }
            }
            assertEquals(want.liveOuts().size(), rec.get("liveOuts").size());
        }
    }

    static Stream<Path> machOAndCoffObjects() {
        return Fixtures.machOAndCoffObjects().stream();
    }

    @ParameterizedTest
    @MethodSource("machOAndCoffObjects")
    void printsMachOAndCoffAsLlvmReadobjPrintedThemByteForByte(Path object) {
        Path dir = Fixtures.stackMapFixtures().resolve(object).getParent();
        Result r = dump(dir, false, false, object.getFileName().toString());
        assertEquals(0, r.status(), r.err());
        assertEquals("", r.err());
        assertEquals(Fixtures.expectedListing(object), r.out());
    }

    @Test
    void matchesLlvmReadobjRunLiveOnEveryMachOAndCoffFixture() throws Exception {
        Path readobj = LlvmTools.require("llvm-readobj-19");
        List<String> command = new ArrayList<>(List.of(readobj.toString(), "--stackmap"));
        List<String> args = Fixtures.machOAndCoffObjects().stream().map(Path::toString).toList();
        command.addAll(args);
        Process p = new ProcessBuilder(command).directory(Fixtures.stackMapFixtures().toFile())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String live = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(1, TimeUnit.MINUTES));
        assertEquals(0, p.exitValue());
        assertTrue(live.contains("Format: Mach-O arm64") && live.contains("Format: COFF-x86-64"), live);
        Result ours = dump(Fixtures.stackMapFixtures(), false, false, args.toArray(String[]::new));
        assertEquals(0, ours.status(), ours.err());
        assertEquals(live, ours.out());
    }

    @ParameterizedTest
    @MethodSource("machOAndCoffObjects")
    void symbolsNameMachOAndCoffFunctionsFromTheirSymbolTables(Path object) throws Exception {
        Path dir = Fixtures.stackMapFixtures().resolve(object).getParent();
        Result r = dump(dir, true, false, object.getFileName().toString());
        assertEquals(0, r.status(), r.err());
        List<String> names = new ArrayList<>();
        for (String line : r.out().split("\n")) {
            if (line.startsWith("  Function address: ")) {
                names.add(line.substring(line.indexOf(", symbol: ") + ", symbol: ".length()));
            }
        }
        String prefix = object.startsWith("macho") ? "_" : "";
        assertEquals(Fixtures.definedFunctions(Fixtures.sourceOf(object)).stream().map(n -> prefix + n).toList(), names);
        JsonNode json = new ObjectMapper().readTree(dump(dir, false, true, object.getFileName().toString()).out());
        assertEquals(names.getFirst(), json.get(0).get("stackMaps").get(0).get("functions").get(0).get("symbol").asText());
        assertTrue(json.get(0).get("loadName").isNull());
    }

    @Test
    void reportsAMachOWithoutStackMapsAndATruncatedCoffInOneLineEach(@TempDir Path tmp) throws Exception {
        byte[] macho = Files.readAllBytes(Fixtures.stackMapFixtures().resolve("macho/x86_64/O2/stackmaps.o"));
        replaceFirst(macho, "__llvm_stackmaps".getBytes(StandardCharsets.US_ASCII), "__llvm_stackmapz".getBytes(StandardCharsets.US_ASCII));
        Files.write(tmp.resolve("nomap.o"), macho);
        byte[] coff = Files.readAllBytes(Fixtures.stackMapFixtures().resolve("coff/x86_64/O2/stackmaps.obj"));
        Files.write(tmp.resolve("short.obj"), java.util.Arrays.copyOf(coff, 100));
        Result r = dump(tmp, false, false, "nomap.o", "short.obj");
        assertEquals(1, r.status());
        String[] errors = r.err().split("\n");
        assertEquals("safepointkit dump: nomap.o: no __LLVM_STACKMAPS,__llvm_stackmaps section", errors[0]);
        assertTrue(errors[1].startsWith("safepointkit dump: short.obj: malformed COFF at byte "), errors[1]);
    }

    @Test
    void reportsEachBadFileInOneLineAndStillPrintsTheOthers(@TempDir Path tmp) throws Exception {
        Path good = Fixtures.stackMapFixtures().resolve("x86_64/O2/patchpoints.o");
        byte[] bytes = Files.readAllBytes(good);
        // An object without a stack map section: rename the section in the name table.
        byte[] renamed = bytes.clone();
        replaceFirst(renamed, ".llvm_stackmaps".getBytes(StandardCharsets.US_ASCII), ".llvm_stackmapz".getBytes(StandardCharsets.US_ASCII));
        Files.write(tmp.resolve("nomap.o"), renamed);
        // A malformed section: version 3 -> 7 at the start of the stack map.
        byte[] corrupt = bytes.clone();
        long sectionStart = stackMapSectionOffset(good);
        corrupt[(int) sectionStart] = 7;
        Files.write(tmp.resolve("corrupt.o"), corrupt);
        Files.copy(good, tmp.resolve("good.o"));

        Result r = dump(tmp, false, false, "missing.o", "nomap.o", "good.o", "corrupt.o", ".");
        assertEquals(1, r.status());
        assertEquals(Fixtures.expectedListing(Path.of("x86_64/O2/patchpoints.o")).replace("File: patchpoints.o", "File: good.o"), r.out());
        String[] errors = r.err().split("\n");
        assertEquals(4, errors.length, r.err());
        assertEquals("safepointkit dump: missing.o: no such file", errors[0]);
        assertEquals("safepointkit dump: nomap.o: no .llvm_stackmaps section", errors[1]);
        assertTrue(errors[2].startsWith("safepointkit dump: corrupt.o: malformed stack map at byte 0 (0x0), Header.Version: version 7"), errors[2]);
        assertEquals("safepointkit dump: .: is a directory", errors[3]);
    }

    @Test
    void jsonOfOnlyBadFilesIsAnEmptyArrayAndExitOne() {
        Result r = dump(Fixtures.stackMapFixtures(), false, true, "nothing-here.o");
        assertEquals(1, r.status());
        assertEquals("[]\n", r.out());
    }

    private static long stackMapSectionOffset(Path object) throws Exception {
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            var elf = dev.safepointkit.stackmap.elf.ElfFile.parse(Fixtures.map(object, arena));
            return elf.findSection(".llvm_stackmaps").orElseThrow().offset();
        }
    }

    private static void replaceFirst(byte[] haystack, byte[] needle, byte[] replacement) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            System.arraycopy(replacement, 0, haystack, i, replacement.length);
            return;
        }
        throw new AssertionError("not found");
    }
}
