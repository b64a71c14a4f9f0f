package dev.safepointkit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.LlvmTools;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code safepointkit run}: load fixture objects and call into them. */
class RunCommandTest {

    private static String[] run(String... args) {
        return CliRunner.run(args);
    }

    private static String jit(String name) {
        return Fixtures.projectRoot().resolve("fixtures/jit/x86_64/" + name + ".o").toString();
    }

    @Test
    void callsAFunctionOfALoadedObject() {
        String[] r = run("run", "--call", "add", "--arg", "40", "--arg", "2", jit("math"));
        assertEquals("0", r[0], r[2]);
        assertEquals("add(40, 2) = 42\n", r[1]);
    }

    @Test
    void writesAJitdumpWhenAsked() throws Exception {
        Path dir = Files.createTempDirectory("jitdump");
        String[] r = run("run", "--jitdump", dir.toString(), "--call", "fib", "--arg", "20", "--repeat", "3", jit("math"));
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].startsWith("fib(20) = 6765\n3 calls in "), r[1]);
        try (var files = Files.list(dir)) {
            Path dump = files.filter(p -> p.getFileName().toString().matches("jit-\\d+\\.dump")).findFirst().orElseThrow();
            assertTrue(Files.size(dump) > 40);
        }
    }

    @Test
    void anUnresolvedSymbolIsAOneLineError() {
        String[] r = run("run", "--call", "call_add", "--arg", "1", "--arg", "2", jit("caller"));
        assertEquals("1", r[0]);
        assertTrue(r[2].startsWith("safepointkit run: " + jit("caller") + ": unresolved symbol '"), r[2]);
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "-1"})
    void aRepeatCountBelowOneIsRefusedWithoutCalling(String count) {
        CliRunner.assertOneLineError(run("run", "--call", "fib", "--arg", "10", "--repeat", count, jit("math")), 2,
                "safepointkit run: --repeat " + count + " is out of range (1 to 2147483647)");
    }

    @Test
    void aMissingFileAndADirectoryAreNamed() throws Exception {
        CliRunner.assertOneLineError(run("run", "--call", "fib", "/nonexistent.o"), 1, "safepointkit run: /nonexistent.o: no such file");
        Path dir = Files.createTempDirectory("objects");
        CliRunner.assertOneLineError(run("run", "--call", "fib", dir.toString()), 1,
                "safepointkit run: " + dir + ": is a directory");
    }

    @Test
    void helpStatesTheRepeatRange() {
        String[] r = run("run", "--help");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].replaceAll("\\s+", " ").contains("1 to 2147483647"), r[1]);
    }

    @Test
    void anObjectWhoseSafepointsTheRegistryRefusesIsNotRun() throws Exception {
        Path bad = Files.createTempDirectory("objects").resolve("bad-safepoints.o");
        Files.write(bad, Fixtures.withFirstInstructionOffset(Files.readAllBytes(Path.of(jit("safepoints"))), 0x00FF_FFFF));
        String[] good = run("run", "--call", "mapped", "--arg", "1", "--arg", "2", jit("host_poll"), jit("safepoints"));
        assertEquals("0", good[0], good[2]);
        CliRunner.assertOneLineError(run("run", "--call", "mapped", "--arg", "1", "--arg", "2", jit("host_poll"), bad.toString()), 1,
                "safepointkit run: " + bad + ": not loaded, required listener the safepoint registry failed in objectLoaded: ");
    }

    @Test
    void aJitdumpPathThatIsAFileIsOneUsageLine() throws Exception {
        Path file = Files.createTempFile("jitdump", ".bin");
        CliRunner.assertOneLineError(run("run", "--jitdump", file.toString(), "--call", "fib", "--arg", "3", jit("math")), 2,
                "safepointkit run: --jitdump " + file + " is not a directory");
    }

    private static final String RUNTIME = """
            define i64 @rt_add(i64 %x, i64 %y) {
            entry:
              %r = add i64 %x, %y
              ret i64 %r
            }
            """;

    private static final String PROGRAM = """
            declare i64 @rt_add(i64, i64)

            define i64 @twice_plus(i64 %x) {
            entry:
              %d = call i64 @rt_add(i64 %x, i64 %x)
              %r = call i64 @plus_one(i64 %d)
              ret i64 %r
            }

            define i64 @plus_one(i64 %x) {
            entry:
              %r = call i64 @rt_add(i64 %x, i64 1)
              ret i64 %r
            }
            """;

    private static final String STATS = "compiled (\\d+) functions, cache hits (\\d+), misses (\\d+), compile ms [0-9.]+, first result ms [0-9.]+";

    private static Path irFiles() throws Exception {
        LlvmTools.requireAvailable(LlvmCompiler::open);
        Path dir = Files.createTempDirectory("ir");
        Files.writeString(dir.resolve("rt.ll"), RUNTIME);
        Files.writeString(dir.resolve("prog.ll"), PROGRAM);
        return dir;
    }

    @Test
    void aCallThatDoesNotMatchTheFunctionsTypeInIrIsRefusedBeforeAnythingRuns() throws Exception {
        LlvmTools.requireAvailable(LlvmCompiler::open);
        String math = Fixtures.projectRoot().resolve("fixtures/jit/src/math.ll").toString();
        String[] none = run("run", "--call", "fib", math);
        assertEquals("2", none[0], none[2]);
        assertEquals("", none[1], "nothing called");
        assertTrue(none[2].startsWith("safepointkit run: fib (math.ll: i64 (i64)) takes 1 argument; 0 given with --arg"),
                none[2]);
        String[] three = run("run", "--call", "add", "--arg", "1", "--arg", "2", "--arg", "3", math);
        assertEquals("2", three[0], three[2]);
        assertTrue(three[2].startsWith("safepointkit run: add (math.ll: i64 (i64, i64)) takes 2 arguments; 3 given"), three[2]);
        String[] right = run("run", "--call", "fib", "--arg", "10", math);
        assertEquals("0", right[0], right[2]);
        assertEquals("fib(10) = 55\n", right[1]);
    }

    @Test
    void aFunctionOfIrThatTakesOrReturnsWhatRunCannotPassIsRefused() throws Exception {
        LlvmTools.requireAvailable(LlvmCompiler::open);
        Path dir = Files.createTempDirectory("ir");
        Files.writeString(dir.resolve("d.ll"), """
                define double @half(double %x) {
                  %r = fmul double %x, 0.5
                  ret double %r
                }
                define void @nothing(i64 %x) {
                  ret void
                }
                """);
        String d = dir.resolve("d.ll").toString();
        String[] half = run("run", "--call", "half", "--arg", "4", d);
        assertEquals("2", half[0], half[2]);
        assertTrue(half[2].startsWith("safepointkit run: half (d.ll: double (double)): parameter 1 is double; run passes"
                + " i64 arguments only"), half[2]);
        String[] nothing = run("run", "--call", "nothing", "--arg", "4", d);
        assertEquals("2", nothing[0], nothing[2]);
        assertTrue(nothing[2].startsWith("safepointkit run: nothing (d.ll: void (i64)) returns void; run prints an i64"
                + " result"), nothing[2]);
    }

    @Test
    void compilesIrEagerlyWithTheRuntimeInlinedAndSavesTheObjects() throws Exception {
        Path dir = irFiles();
        Path saved = dir.resolve("saved");
        String[] r = run("run", "--runtime", dir.resolve("rt.ll").toString(), "--save-objects", saved.toString(), "--stats",
                "--call", "twice_plus", "--arg", "20", dir.resolve("prog.ll").toString());
        assertEquals("0", r[0], r[2]);
        assertEquals("twice_plus(20) = 41\n", r[1]);
        assertTrue(r[2].strip().matches(STATS), r[2]);
        assertTrue(r[2].strip().startsWith("compiled 3 functions, cache hits 0, misses 0,"), r[2]);
        assertTrue(Files.size(saved.resolve("prog.ll.o")) > 0);
        assertTrue(Files.size(saved.resolve("rt.ll.o")) > 0);
    }

    @Test
    void compilesLazilyAndAWarmCacheCompilesNothing() throws Exception {
        Path dir = irFiles();
        String cache = dir.resolve("cache").toString();
        String[] args = {"run", "--lazy", "--runtime", dir.resolve("rt.ll").toString(), "--cache", cache, "--stats",
            "--call", "twice_plus", "--arg", "20", dir.resolve("prog.ll").toString()};
        String[] cold = run(args);
        assertEquals("0", cold[0], cold[2]);
        assertEquals("twice_plus(20) = 41\n", cold[1]);
        assertTrue(cold[2].strip().startsWith("compiled 3 functions, cache hits 0, misses 3,"), cold[2]);
        String[] warm = run(args);
        assertEquals("twice_plus(20) = 41\n", warm[1]);
        assertTrue(warm[2].strip().startsWith("compiled 0 functions, cache hits 3, misses 0, compile ms 0.0,"), warm[2]);
    }

    @Test
    void theStatsLineCountsFunctionsLlvmCompiledAndOneCacheLookupPerObject() throws Exception {
        Path dir = irFiles();
        String cache = dir.resolve("cache").toString();
        String[] eager = {"run", "--cache", cache, "--stats", "--call", "twice_plus", "--arg", "20",
            dir.resolve("prog.ll").toString(), dir.resolve("rt.ll").toString()};
        String[] cold = run(eager);
        assertEquals("0", cold[0], cold[2]);
        // Two objects (prog.ll's, rt.ll's), three functions in them.
        assertTrue(cold[2].strip().startsWith("compiled 3 functions, cache hits 0, misses 2,"), cold[2]);
        String[] warm = run(eager);
        assertEquals("0", warm[0], warm[2]);
        assertTrue(warm[2].strip().startsWith("compiled 0 functions, cache hits 2, misses 0, compile ms 0.0,"), warm[2]);
    }

    @Test
    void inputsLoadInAnyOrderWhateverTheirKind() throws Exception {
        Path dir = irFiles();
        String prog = dir.resolve("prog.ll").toString();
        String rt = dir.resolve("rt.ll").toString();
        Path objects = dir.resolve("objects");
        String[] aot = run("compile", "--out", objects.toString(), prog, rt);
        assertEquals("0", aot[0], aot[2]);
        String progObject = objects.resolve("prog.o").toString();
        String rtObject = objects.resolve("rt.o").toString();
        for (String[] files : new String[][] {{prog, rt}, {rt, prog}, {progObject, rtObject}, {rtObject, progObject},
            {progObject, rt}, {prog, rtObject}}) {
            boolean anyIr = files[0].endsWith(".ll") || files[1].endsWith(".ll");
            for (boolean lazy : anyIr ? new boolean[] {false, true} : new boolean[] {false}) {
                List<String> args = new ArrayList<>(List.of("run", "--call", "twice_plus", "--arg", "20"));
                if (lazy) {
                    args.add("--lazy");
                }
                args.addAll(List.of(files));
                String[] r = run(args.toArray(String[]::new));
                assertEquals("0", r[0], args + ": " + r[2]);
                assertEquals("twice_plus(20) = 41\n", r[1], args.toString());
            }
        }
    }

    @Test
    void aSymbolNoInputDefinesFailsNamingItAndTheFileThatNeedsIt() throws Exception {
        Path dir = irFiles();
        String prog = dir.resolve("prog.ll").toString();
        CliRunner.assertOneLineError(run("run", "--call", "twice_plus", "--arg", "20", prog), 1,
                "safepointkit run: " + prog + ": unresolved symbol 'rt_add': not defined by");
        Path objects = dir.resolve("objects");
        assertEquals("0", run("compile", "--out", objects.toString(), prog)[0]);
        String progObject = objects.resolve("prog.o").toString();
        CliRunner.assertOneLineError(run("run", "--call", "twice_plus", "--arg", "20", progObject, jit("math")), 1,
                "safepointkit run: " + progObject + ": unresolved symbol 'rt_add': not defined by");
    }

    @Test
    void objectsThatNeedEachOthersSymbolsAreNamedWithWhatEachNeeds() throws Exception {
        LlvmTools.requireAvailable(LlvmCompiler::open);
        Path dir = Files.createTempDirectory("ir");
        Files.writeString(dir.resolve("a.ll"), "declare i64 @b_fn(i64)\ndefine i64 @a_fn(i64 %x) {\n  %r = call i64 @b_fn(i64 %x)\n"
                + "  ret i64 %r\n}\n");
        Files.writeString(dir.resolve("b.ll"), "declare i64 @a_fn(i64)\ndefine i64 @b_fn(i64 %x) {\n  %r = call i64 @a_fn(i64 %x)\n"
                + "  ret i64 %r\n}\n");
        String a = dir.resolve("a.ll").toString();
        String b = dir.resolve("b.ll").toString();
        CliRunner.assertOneLineError(run("run", "--call", "a_fn", "--arg", "1", a, b), 1,
                "safepointkit run: these inputs refer to each other's symbols (" + a + " needs 'b_fn' from " + b + "; "
                        + b + " needs 'a_fn' from " + a + ")");
    }

    @Test
    void aLazyCompileThatFailsEndsTheRunWithOneLineNamingTheFunctionAndStatusOne() throws Exception {
        LlvmTools.requireAvailable(LlvmCompiler::open);
        Path dir = Files.createTempDirectory("ir");
        Path source = dir.resolve("lz.ll");
        Files.writeString(source, """
                declare i64 @nowhere(i64)
                define i64 @main_fn(i64 %x) {
                  %r = call i64 @helper(i64 %x)
                  ret i64 %r
                }
                define i64 @helper(i64 %x) {
                  %r = call i64 @nowhere(i64 %x)
                  ret i64 %r
                }
                """);
        // The failed compile halts the JVM (JIT code called the stub and cannot be returned an
        // error), so it runs in a JVM of its own.
        Path javaBin = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(javaBin.toString(), "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), SafepointKit.class.getName(), "run", "--lazy", "--call", "main_fn",
                "--arg", "1", source.toString()).redirectOutput(dir.resolve("out").toFile()).redirectError(dir.resolve("err").toFile())
                .start();
        assertTrue(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS), "the run did not end");
        String err = Files.readString(dir.resolve("err"));
        CliRunner.assertOneLineError(new String[] {Integer.toString(p.exitValue()), Files.readString(dir.resolve("out")), err}, 1,
                "safepointkit run: lazy compile of 'helper' failed: lz.ll.helper: unresolved symbol 'nowhere'");
    }

    @Test
    void directoryOptionsNameTheOptionThePathAndWhy() throws Exception {
        Path file = Files.createTempFile("not-a-dir", ".bc");
        for (String option : new String[] {"--cache", "--save-objects", "--jitdump"}) {
            CliRunner.assertOneLineError(run("run", option, file.toString(), "--call", "fib", "--arg", "3",
                    Fixtures.projectRoot().resolve("fixtures/jit/src/math.ll").toString()), 2,
                    "safepointkit run: " + option + " " + file + " is not a directory");
            Path below = file.resolve("sub");
            CliRunner.assertOneLineError(run("run", option, below.toString(), "--call", "fib", "--arg", "3",
                    Fixtures.projectRoot().resolve("fixtures/jit/src/math.ll").toString()), 1,
                    "safepointkit run: " + option + " " + below + ": cannot create the directory: not a directory");
        }
        CliRunner.assertOneLineError(run("compile", "--out", file.toString(),
                Fixtures.projectRoot().resolve("fixtures/jit/src/math.ll").toString()), 2,
                "safepointkit compile: --out " + file + " is not a directory");
    }

    @Test
    void aRuntimeThatIsNotIrIsRefusedNamingTheOption() throws Exception {
        Path dir = Files.createTempDirectory("objects");
        Path bad = dir.resolve("x.o");
        Files.writeString(bad, "garbage");
        CliRunner.assertOneLineError(run("run", "--runtime", bad.toString(), "--call", "fib", jit("math")), 2,
                "safepointkit run: --runtime " + bad + ": not LLVM IR (.ll) or bitcode (.bc)");
        CliRunner.assertOneLineError(run("run", "--call", "fib", bad.toString()), 1,
                "safepointkit run: " + bad + ": malformed ELF at byte 0");
    }

    @Test
    void anInputWhoseNameSaysNeitherObjectNorIrIsAUsageErrorNamingIt() throws Exception {
        Path dir = Files.createTempDirectory("inputs");
        Path text = dir.resolve("prog.txt");
        Files.copy(Fixtures.projectRoot().resolve("fixtures/jit/src/math.ll"), text);
        CliRunner.assertOneLineError(run("run", "--call", "fib", "--arg", "3", text.toString()), 2,
                "safepointkit run: " + text + ": not an object (.o), LLVM IR (.ll) or bitcode (.bc)");
    }

    @Test
    void compileTakesOnlyIrNamingTheOptionAndThePath() throws Exception {
        Path out = Files.createTempDirectory("out");
        CliRunner.assertOneLineError(run("compile", "--out", out.toString(), "--runtime", jit("math"),
                Fixtures.projectRoot().resolve("fixtures/jit/src/math.ll").toString()), 2,
                "safepointkit compile: --runtime " + jit("math") + ": not LLVM IR (.ll) or bitcode (.bc)");
        CliRunner.assertOneLineError(run("compile", "--out", out.toString(), jit("math")), 2,
                "safepointkit compile: " + jit("math") + ": not LLVM IR (.ll) or bitcode (.bc)");
    }

    @Test
    void aBcFileThatIsNotBitcodeIsSaidToBeNone() throws Exception {
        Path dir = Files.createTempDirectory("bc");
        Path text = dir.resolve("text.bc");
        Files.writeString(text, "define i64 @f() {\n  ret i64 1\n}\n");
        CliRunner.assertOneLineError(run("run", "--call", "f", text.toString()), 1,
                "safepointkit run: " + text + ": not LLVM bitcode: it does not start with the magic 'BC' 0xC0DE");
        CliRunner.assertOneLineError(run("compile", "--out", dir.resolve("out").toString(), text.toString()), 1,
                "safepointkit compile: " + text + ": not LLVM bitcode: it does not start with the magic 'BC' 0xC0DE");
    }

    @Test
    void brokenBitcodeAndIrAreNamedWithLlvmsFirstLine() throws Exception {
        LlvmTools.requireAvailable(LlvmCompiler::open);
        Path dir = Files.createTempDirectory("bc");
        Path truncated = dir.resolve("truncated.bc");
        Files.write(truncated, new byte[] {'B', 'C', (byte) 0xC0, (byte) 0xDE, 0x35, 0x14, 0, 0, 5, 0, 0, 0, 0x62, 0x0C});
        CliRunner.assertOneLineError(run("run", "--call", "f", truncated.toString()), 1,
                "safepointkit run: " + truncated + ": not valid bitcode: ");
        Path bad = dir.resolve("bad.ll");
        Files.writeString(bad, "define i64 @f( {\n");
        CliRunner.assertOneLineError(run("run", "--call", "f", bad.toString()), 1,
                "safepointkit run: " + bad + ": not valid LLVM IR: 2:1: error: expected type");
        CliRunner.assertOneLineError(run("compile", "--out", dir.resolve("out").toString(), bad.toString()), 1,
                "safepointkit compile: " + bad + ": not valid LLVM IR: 2:1: error: expected type");
    }

    /** {@code ll} assembled to bitcode by llvm-as, written to {@code bc}. */
    private static Path assemble(Path ll, Path bc) throws Exception {
        Path tool = LlvmTools.require("llvm-as-19");
        Process p = new ProcessBuilder(tool.toString(), "-o", bc.toString(), ll.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), out);
        return bc;
    }

    /**
     * {@code bitcode} behind the wrapper header Apple's tools write: magic 0x0B17C0DE, version,
     * offset, size, cputype (x86-64), each a little-endian u32, then the bitcode at the offset,
     * here after {@code gap} bytes of padding.
     */
    private static byte[] wrapped(byte[] bitcode, int offset, int size, int gap) {
        return ByteBuffer.allocate(20 + gap + bitcode.length).order(ByteOrder.LITTLE_ENDIAN).putInt(0x0B17C0DE).putInt(0)
                .putInt(offset).putInt(size).putInt(0x01000007).put(new byte[gap]).put(bitcode).array();
    }

    @Test
    void wrappedBitcodeRunsAndCompilesAsPlainBitcodeDoes() throws Exception {
        Path dir = irFiles();
        Path progBc = assemble(dir.resolve("prog.ll"), dir.resolve("prog.bc"));
        Path rtBc = assemble(dir.resolve("rt.ll"), dir.resolve("rt.bc"));
        Path wrapped = Files.createDirectory(dir.resolve("wrapped"));
        Path progWrapped = wrapped.resolve("prog.bc");
        Path rtWrapped = wrapped.resolve("rt.bc");
        byte[] prog = Files.readAllBytes(progBc);
        byte[] rt = Files.readAllBytes(rtBc);
        // The bitcode 12 bytes past the header, where the offset says, not right after it.
        Files.write(progWrapped, wrapped(prog, 32, prog.length, 12));
        Files.write(rtWrapped, wrapped(rt, 20, rt.length, 0));
        assertEquals((byte) 0xDE, Files.readAllBytes(progWrapped)[0], "the wrapper's magic, little-endian, first");
        for (Path[] files : new Path[][] {{progBc, rtBc}, {progWrapped, rtWrapped}, {progWrapped, rtBc}}) {
            for (boolean lazy : new boolean[] {false, true}) {
                List<String> args = new ArrayList<>(List.of("run", "--call", "twice_plus", "--arg", "20"));
                if (lazy) {
                    args.add("--lazy");
                }
                args.addAll(List.of("--runtime", files[1].toString(), files[0].toString()));
                String[] r = run(args.toArray(String[]::new));
                assertEquals("0", r[0], args + ": " + r[2]);
                assertEquals("twice_plus(20) = 41\n", r[1], args.toString());
            }
        }
        String[] both = run("run", "--call", "twice_plus", "--arg", "5", progWrapped.toString(), rtWrapped.toString());
        assertEquals("0", both[0], both[2]);
        assertEquals("twice_plus(5) = 11\n", both[1]);
        String[] aot = run("compile", "--out", dir.resolve("objects").toString(), progWrapped.toString(), rtWrapped.toString());
        assertEquals("0", aot[0], aot[2]);
        String[] objects = run("run", "--call", "twice_plus", "--arg", "20", dir.resolve("objects/prog.o").toString(),
                dir.resolve("objects/rt.o").toString());
        assertEquals("0", objects[0], objects[2]);
        assertEquals("twice_plus(20) = 41\n", objects[1]);
    }

    @Test
    void aWrapperWhoseBitcodeRunsPastTheEndOfTheFileIsRefusedNamingTheFile() throws Exception {
        Path dir = irFiles();
        byte[] prog = Files.readAllBytes(assemble(dir.resolve("prog.ll"), dir.resolve("prog.bc")));
        Path rt = dir.resolve("rt.ll");
        Path progLl = dir.resolve("prog.ll");
        Map<String, byte[]> bad = new LinkedHashMap<>();
        bad.put("size-past-end.bc", wrapped(prog, 20, prog.length + 1, 0));
        bad.put("offset-past-end.bc", wrapped(prog, 20 + prog.length + 4, 4, 0));
        bad.put("huge.bc", wrapped(prog, 0xFFFF_FFF0, 0x20, 0));
        bad.put("wraps-around.bc", wrapped(prog, 20, -16, 0));
        bad.put("header-only.bc", Arrays.copyOf(wrapped(prog, 20, prog.length, 0), 12));
        for (Map.Entry<String, byte[]> e : bad.entrySet()) {
            Path file = dir.resolve(e.getKey());
            Files.write(file, e.getValue());
            String why = ": not valid bitcode: error: Invalid bitcode wrapper header";
            CliRunner.assertOneLineError(run("run", "--runtime", rt.toString(), "--call", "twice_plus", "--arg", "1", file.toString()), 1,
                    "safepointkit run: " + file + why);
            CliRunner.assertOneLineError(run("run", "--lazy", "--call", "twice_plus", "--arg", "1", "--runtime",
                    file.toString(), progLl.toString()), 1, "safepointkit run: " + file + why);
            CliRunner.assertOneLineError(run("compile", "--out", dir.resolve("out").toString(), file.toString()), 1,
                    "safepointkit compile: " + file + why);
        }
    }

    @Test
    void aFunctionNoneOfManyDefinesIsRefusedListingTheFirstTwentyAndTheCount() throws Exception {
        StringBuilder ir = new StringBuilder();
        List<String> names = new java.util.ArrayList<>();
        for (int i = 0; i < 25; i++) {
            names.add("g" + i);
            ir.append("define i64 @g").append(i).append("(i64 %x) {\n  ret i64 %x\n}\n");
        }
        Path many = Files.createTempDirectory("ir").resolve("many.ll");
        Files.writeString(many, ir);
        CliRunner.assertOneLineError(run("run", "--call", "nosuch", many.toString()), 2,
                "safepointkit run: --call nosuch: no input defines it; they define "
                        + String.join(", ", names.subList(0, 20)) + ", ... (25 in all)");
    }

    @Test
    void aFunctionNoInputDefinesIsRefusedListingThoseTheyDo() {
        CliRunner.assertOneLineError(run("run", "--call", "nosuch", jit("math")), 2,
                "safepointkit run: --call nosuch: no input defines it; they define add, fib, sum_array, apply");
    }

    @Test
    void aCacheLimitEvictsTheLeastRecentlyUsedEntries() throws Exception {
        Path dir = irFiles();
        Path cache = dir.resolve("cache");
        String[] args = {"run", "--lazy", "--runtime", dir.resolve("rt.ll").toString(), "--cache", cache.toString(),
            "--cache-limit", "1", "--stats", "--call", "twice_plus", "--arg", "20", dir.resolve("prog.ll").toString()};
        String[] cold = run(args);
        assertEquals("0", cold[0], cold[2]);
        assertEquals("twice_plus(20) = 41\n", cold[1]);
        try (var entries = Files.list(cache)) {
            assertEquals(1, entries.filter(f -> f.toString().endsWith(".spko")).count(), "a 1-byte limit keeps only the entry just stored");
        }
        String[] again = run(args);
        assertEquals("twice_plus(20) = 41\n", again[1]);
        assertTrue(again[2].strip().matches(".*cache hits [01], misses [1-9].*"), "evicted entries are compiled again: " + again[2]);
        for (String bad : new String[] {"0", "-5", "12X", "K", "99999999999G"}) {
            CliRunner.assertOneLineError(run("run", "--cache", cache.toString(), "--cache-limit", bad, "--call", "twice_plus",
                    dir.resolve("prog.ll").toString()), 2,
                    "safepointkit run: --cache-limit " + bad + ": not a positive size (bytes, or a number followed by K, M or G)");
        }
        CliRunner.assertOneLineError(run("run", "--cache-limit", "1M", "--call", "twice_plus", dir.resolve("prog.ll").toString()), 2,
                "safepointkit run: --cache-limit needs --cache DIR");
    }

    @Test
    void pipelineOptionsWithoutIrAreRefused() {
        CliRunner.assertOneLineError(run("run", "--lazy", "--call", "add", jit("math")), 2,
                "safepointkit run: --lazy, --cache and --save-objects apply to .ll and .bc files; none given");
    }

    @Test
    void theReadmesRunCommandsPrintWhatItSaysOnTheExampleFiles() throws Exception {
        LlvmTools.requireAvailable(LlvmCompiler::open);
        Path root = Fixtures.projectRoot();
        List<String> lines = Files.readAllLines(root.resolve("README.md"));
        Path dir = Files.createTempDirectory("readme");
        int commands = 0;
        for (int i = 0; i < lines.size(); i++) {
            if (!lines.get(i).startsWith("bin/safepointkit run --lazy --runtime examples/run/")) {
                continue;
            }
            StringBuilder command = new StringBuilder();
            while (lines.get(i).strip().endsWith("\\")) {
                command.append(lines.get(i).strip(), 0, lines.get(i).strip().length() - 1).append(' ');
                i++;
            }
            command.append(lines.get(i).replaceFirst("#.*", ""));
            List<String> args = new ArrayList<>();
            for (String word : command.toString().strip().split("\\s+")) {
                args.add(switch (word) {
                    case "bin/safepointkit" -> null;
                    case "~/.cache/spk" -> dir.resolve("cache").toString();
                    case "out" -> dir.resolve("out").toString();
                    default -> word.startsWith("examples/") ? root.resolve(word).toString() : word;
                });
            }
            args.removeIf(java.util.Objects::isNull);
            String result = lines.get(i + 1).replaceFirst("^# ", "") + "\n";
            String stats = lines.get(i + 2).replaceFirst("^# ", "").replaceFirst(" +\\(stderr\\)$", "");
            String[] r = run(args.toArray(String[]::new));
            assertEquals("0", r[0], args + ": " + r[2]);
            assertEquals(result, r[1], args.toString());
            String expected = stats.replaceAll("ms [0-9.]+", "ms [0-9.]+");
            assertTrue(r[2].strip().matches(expected), "README: " + stats + "; printed: " + r[2]);
            assertTrue(r[2].strip().matches(STATS), r[2]);
            commands++;
        }
        assertEquals(2, commands, "the README's two runs, cold and warm");
        assertTrue(Files.isRegularFile(dir.resolve("out/prog.ll.entry.o")));
        assertTrue(Files.notExists(dir.resolve("out/prog.ll.unused.o")), "never called, never compiled");
    }
}
