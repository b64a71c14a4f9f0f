package dev.safepointkit.compile;

import static dev.safepointkit.compile.PipelineFixtures.call;
import static dev.safepointkit.compile.PipelineFixtures.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.host.LlvmUnavailableException;
import dev.safepointkit.patch.CodePatcher;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The persistent cache through the pipeline: restarts, damaged entries, two processes at once. */
class CacheTest {
    /** What every run of the program must print. */
    private static final String RESULTS = "10010 13010 11 26 " + (5 + 7 + PipelineFixtures.rtLarge(5));

    private static final String MAIN = """
            declare i64 @rt_small(i64)
            declare i64 @rt_large(i64)

            define i64 @main_fn(i64 %x) {
            entry:
              %a = call i64 @rt_small(i64 %x)
              %b = call i64 @rt_large(i64 %x)
              %r = add i64 %a, %b
              ret i64 %r
            }
            """;

    @TempDir
    Path dir;

    /** The runtime, the split program lazily and main.ll eagerly; every result on one line. */
    static String runBoth(JitHost host, CompilePipeline p) throws Throwable {
        p.runtime("runtime.ll", utf8(PipelineFixtures.runtime()));
        p.loadLazy("split.ll", utf8(PipelineFixtures.SPLIT));
        p.load("main.ll", utf8(MAIN));
        return call(host, "entry", 3) + " " + call(host, "entry", 3) + " " + call(host, "dispatch", 0, 5) + " "
                + call(host, "dispatch", 1, 5) + " " + call(host, "main_fn", 5);
    }

    private CompilePipeline.Stats run(CompilePipeline.LlvmOpener llvm) throws Throwable {
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(llvm).build();
            assertEquals(RESULTS, runBoth(host, p));
            return p.stats();
        }
    }

    private static CompilePipeline.LlvmOpener noLlvm() {
        return () -> {
            throw new LlvmUnavailableException("a warm start must not open libLLVM", null);
        };
    }

    /** The runtime, split.ll's data and its six functions (all reached), main.ll. */
    private static final int OBJECTS = 1 + 1 + 6 + 1;

    @Test
    void aRestartTakesEveryObjectFromTheCacheWithoutOpeningLlvm() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        CompilePipeline.Stats cold = run(() -> llvm);
        assertEquals(0, cold.cacheHits());
        assertEquals(OBJECTS, cold.cacheMisses());
        CompilePipeline.Stats warm = run(noLlvm());
        assertEquals(OBJECTS, warm.cacheHits());
        assertEquals(0, warm.cacheMisses());
        assertEquals(cold.functions(), warm.functions(), "the same functions, from the same objects");
        assertEquals(cold.functions(), cold.compiledFunctions(), "a cold start compiles every function it loads");
        assertEquals(0, warm.compiledFunctions(), "a warm start compiles none");
        for (CompilePipeline.Phase phase : List.of(CompilePipeline.Phase.PARSE, CompilePipeline.Phase.OPTIMIZE,
                CompilePipeline.Phase.EMIT, CompilePipeline.Phase.LOAD, CompilePipeline.Phase.CACHE)) {
            assertTrue(cold.phaseNanos().get(phase) > 0, "a cold start spends time on " + phase + ": " + cold.describePhases());
        }
        for (CompilePipeline.Phase phase : List.of(CompilePipeline.Phase.OPEN, CompilePipeline.Phase.PARSE,
                CompilePipeline.Phase.SPLIT, CompilePipeline.Phase.OPTIMIZE, CompilePipeline.Phase.EMIT)) {
            assertEquals(0L, warm.phaseNanos().get(phase), "a warm start spends nothing on " + phase + ": " + warm.describePhases());
        }
        assertTrue(warm.phaseNanos().get(CompilePipeline.Phase.LOAD) > 0, warm.describePhases());
    }

    /** Takes the cache directory away and puts a file in its place: every store fails, as on a full disk. */
    private static void breakDirectory(Path cacheDir) throws IOException {
        try (Stream<Path> files = Files.list(cacheDir)) {
            for (Path f : files.toList()) {
                Files.delete(f);
            }
        }
        Files.delete(cacheDir);
        Files.writeString(cacheDir, "not a directory");
    }

    @Test
    void aCacheThatCannotStoreFailsTheCompileUnlessAHandlerTakesItsFailures() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        Path cacheDir = dir.resolve("cache");
        ObjectCache cache = new ObjectCache(cacheDir, Long.MAX_VALUE);
        breakDirectory(cacheDir);
        // By default the compile fails naming the cache and the entry, and nothing of it is loaded.
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(() -> llvm).build();
            IOException e = assertThrows(IOException.class, () -> p.runtime("runtime.ll", utf8(PipelineFixtures.runtime())));
            assertTrue(e.getMessage().startsWith("the cache in " + cacheDir + " could not store the object of runtime.ll: "),
                    e.getMessage());
            assertEquals(List.of(), host.objects());
            // A runtime whose compile failed is not set: with the directory back, the same call succeeds.
            Files.delete(cacheDir);
            Files.createDirectory(cacheDir);
            p.runtime("runtime.ll", utf8(PipelineFixtures.runtime()));
            p.load("main.ll", utf8(MAIN));
            assertEquals(5 + 7 + PipelineFixtures.rtLarge(5), call(host, "main_fn", 5));
        }
        breakDirectory(cacheDir);
        // With a handler, every compile goes on and the whole program runs, lazy functions included.
        List<String> failed = new CopyOnWriteArrayList<>();
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(() -> llvm)
                    .cacheStoreFailures((entry, cause) -> failed.add(entry)).build();
            assertEquals(RESULTS, runBoth(host, p));
            assertEquals(OBJECTS, p.stats().cacheMisses());
        }
        assertEquals(OBJECTS, failed.stream().filter(e -> e.startsWith("the object of ")).count(), "one per object: " + failed);
        for (String entry : List.of("the object of runtime.ll", "the object of main.ll", "the manifest of main.ll",
                "the manifest of split.ll")) {
            assertTrue(failed.contains(entry), entry + " in " + failed);
        }
        assertTrue(failed.stream().anyMatch(e -> e.startsWith("the kept IR of ")), "kept IR: " + failed);
        // The directory back: nothing was cached, so the next run compiles everything again and stores it.
        Files.delete(cacheDir);
        Files.createDirectory(cacheDir);
        for (int run = 0; run < 2; run++) {
            try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
                CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(() -> llvm).build();
                assertEquals(RESULTS, runBoth(host, p));
                assertEquals(run == 0 ? 0 : OBJECTS, p.stats().cacheHits(), "run " + run);
            }
        }
        // A handler that throws fails the compile with what it threw.
        breakDirectory(cacheDir);
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(() -> llvm)
                    .cacheStoreFailures((entry, cause) -> {
                        throw new UncheckedIOException(entry, cause);
                    }).build();
            assertEquals("the object of main.ll",
                    assertThrows(UncheckedIOException.class, () -> p.load("main.ll", utf8(MAIN))).getMessage());
            assertEquals(List.of(), host.objects());
        }
    }

    @Test
    void aLazyFunctionWhoseCompileFailsContinuesIntoItsFallbackAndCompilesOnALaterCall() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        Path cacheDir = dir.resolve("cache");
        ObjectCache cache = new ObjectCache(cacheDir, Long.MAX_VALUE);
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        String lib = PipelineFixtures.scale(3);
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, null, failures::add);
                Arena arena = Arena.ofShared()) {
            MethodHandle minusOne = MethodHandles.dropArguments(MethodHandles.constant(long.class, -1L), 0, long.class);
            MemorySegment fallback = Linker.nativeLinker().upcallStub(minusOne,
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), arena);
            List<String> asked = new CopyOnWriteArrayList<>();
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(() -> llvm)
                    .lazyFallbacks(name -> {
                        asked.add(name);
                        return fallback.address();
                    }).build();
            p.loadLazy("lib.ll", utf8(lib));
            assertEquals(List.of("scale"), asked, "asked once per function, when its module is loaded");
            // Its compile fails at the cache store: the call continues into the fallback, and is reported.
            breakDirectory(cacheDir);
            assertEquals(-1, call(host, "scale", 10));
            assertEquals(1, failures.size(), failures.toString());
            String message = failures.getFirst().getMessage();
            assertTrue(message.startsWith("lazy compile of 'scale' failed: the cache in " + cacheDir
                    + " could not store the object of lib.ll.scale: "), message);
            // The next call compiles it again, and with the directory back it stays compiled.
            Files.delete(cacheDir);
            Files.createDirectory(cacheDir);
            assertEquals(30, call(host, "scale", 10));
            assertEquals(30, call(host, "scale", 10));
            assertEquals(1, failures.size(), failures.toString());
        }
    }

    @Test
    void aFallbacksFunctionThatThrowsFailsTheLoadWithNothingOfTheModuleKept() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        String lib = PipelineFixtures.scale(3) + PipelineFixtures.SHIFT;
        java.util.concurrent.atomic.AtomicInteger asked = new java.util.concurrent.atomic.AtomicInteger();
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            // Throws when asked for the second function, the first time only.
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).lazyFallbacks(name -> {
                if (asked.incrementAndGet() == 2) {
                    throw new IllegalStateException("no interpreter entry for " + name);
                }
                return 0;
            }).build();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.loadLazy("lib.ll", utf8(lib)));
            assertEquals("no interpreter entry for shift", e.getMessage());
            assertTrue(patcher.stub("scale").isEmpty() && host.address("scale").isEmpty(), "scale was not declared");
            // Nothing of the module was kept, so it loads again.
            assertEquals(List.of("scale", "shift"), p.loadLazy("lib.ll", utf8(lib)));
            assertEquals(30, call(host, "scale", 10));
            assertEquals(20, call(host, "shift", 10));
        }
    }

    @Test
    void aLazyModuleDefiningWhatTheHostDefinesAlreadyIsRefusedBeforeAnyFunctionIsDeclared() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        String shift = PipelineFixtures.SHIFT;
        String scale = PipelineFixtures.scale(3);
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host); Arena arena = Arena.ofShared()) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            p.load("eager.ll", utf8(shift));
            // scale comes first in the module: it must not be left declared when shift is refused.
            JitLoadException e = assertThrows(JitLoadException.class, () -> p.loadLazy("lib.ll", utf8(scale + shift)));
            assertEquals("lib.ll: defines 'shift', which the host defines already (a loaded object's global or a runtime symbol)",
                    e.getMessage());
            assertTrue(patcher.stub("scale").isEmpty() && host.address("scale").isEmpty(), "scale was not declared");
            host.defineRuntimeSymbol("twice", arena.allocate(1));
            assertTrue(assertThrows(JitLoadException.class, () -> p.loadLazy("lib2.ll", utf8(scale + shift.replace("shift", "twice"))))
                    .getMessage().startsWith("lib2.ll: defines 'twice', which the host defines already"));
            assertTrue(patcher.stub("scale").isEmpty(), "scale was not declared");
            // Nothing was kept: a module of scale alone loads.
            assertEquals(List.of("scale"), p.loadLazy("lib3.ll", utf8(scale)));
            assertEquals(30, call(host, "scale", 10));
            assertEquals(20, call(host, "shift", 10));
        }
    }

    @Test
    void aFunctionTakenFromTheCacheStillOffersItsKeptBodyToLaterCompiles() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        String lib = """
                define i64 @scale(i64 %x) {
                entry:
                  %r = mul i64 %x, 3
                  ret i64 %r
                }
                """;
        String user = """
                declare i64 @scale(i64)

                define i64 @user(i64 %x) {
                entry:
                  %s = call i64 @scale(i64 %x)
                  %r = add i64 %s, 1
                  ret i64 %r
                }
                """;
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(() -> llvm).build();
            p.loadLazy("lib.ll", utf8(lib));
            assertEquals(30, call(host, "scale", 10));
        }
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(() -> llvm).build();
            p.loadLazy("lib.ll", utf8(lib));
            assertEquals(30, call(host, "scale", 10));
            assertEquals(1, p.stats().cacheHits(), "scale's object came from the cache");
            p.loadLazy("user.ll", utf8(user));
            assertEquals(31, call(host, "user", 10));
            var userBody = host.objects().getLast();
            assertEquals("user.ll.user", userBody.name());
            assertTrue(!userBody.referencedSymbols().contains("scale"),
                    "scale's kept IR, read from the cache when user's compile asked for it, was inlined: " + userBody.referencedSymbols());
            assertEquals(java.util.Set.of("user"), p.dependents("scale"));
            p.redefine("scale", "scale-v2.ll", utf8("""
                    define i64 @scale(i64 %x) {
                    entry:
                      %r = mul i64 %x, 100
                      ret i64 %r
                    }
                    """));
            assertEquals(1001, call(host, "user", 10), "the dependent runs the new body");
        }
    }

    /**
     * user.ll is the same source in both runs, so its manifest is found again; but the scale its
     * cached object inlined is not the scale loaded now.
     */
    @Test
    void aCachedObjectThatInlinedABodyAnotherSourceNoLongerHasIsNotLoaded() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        String user = "declare i64 @scale(i64)\n"
                + "define i64 @user(i64 %x) {\n  %s = call i64 @scale(i64 %x)\n  %r = add i64 %s, 1\n  ret i64 %r\n}\n";
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        for (int factor : new int[] {3, 5, 3}) {
            try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
                CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(() -> llvm).build();
                p.loadLazy("lib.ll", utf8("define i64 @scale(i64 %x) {\n  %r = mul i64 %x, " + factor + "\n  ret i64 %r\n}\n"));
                assertEquals(10L * factor, call(host, "scale", 10));
                p.loadLazy("user.ll", utf8(user));
                assertEquals(10L * factor + 1, call(host, "user", 10), "user with scale multiplying by " + factor);
                assertEquals(java.util.Set.of("user"), p.dependents("scale"));
            }
        }
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(noLlvm()).build();
            p.loadLazy("lib.ll", utf8("define i64 @scale(i64 %x) {\n  %r = mul i64 %x, 3\n  ret i64 %r\n}\n"));
            assertEquals(30, call(host, "scale", 10));
            p.loadLazy("user.ll", utf8(user));
            assertEquals(31, call(host, "user", 10), "a warm start of sources seen before still needs no libLLVM");
        }
    }

    @Test
    void aCorruptOrTruncatedEntryIsRecompiledNeverLoaded() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        run(() -> llvm);
        List<Path> entries = entries();
        // Damage every entry, each in one of three ways: a flipped payload byte, a cut, a wrong length.
        for (int i = 0; i < entries.size(); i++) {
            byte[] bytes = Files.readAllBytes(entries.get(i));
            switch (i % 3) {
                case 0 -> bytes[bytes.length - 1] ^= 0x40;
                case 1 -> bytes = java.util.Arrays.copyOf(bytes, bytes.length / 2);
                default -> bytes[8] ^= 1;
            }
            Files.write(entries.get(i), bytes);
        }
        CompilePipeline.Stats repaired = run(() -> llvm);
        assertEquals(0, repaired.cacheHits(), "no damaged entry was used");
        assertEquals(OBJECTS, repaired.cacheMisses());
        CompilePipeline.Stats warm = run(noLlvm());
        assertEquals(OBJECTS, warm.cacheHits(), "the recompiled entries are whole again");
    }

    @Test
    void twoProcessesRacingOnOneCacheDirectory() throws Throwable {
        PipelineFixtures.llvm();
        List<Process> processes = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            processes.add(new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                    CacheRace.class.getName(), dir.toString()).redirectErrorStream(true).start());
        }
        List<String> outputs = new ArrayList<>();
        for (Process process : processes) {
            String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            assertTrue(process.waitFor(120, TimeUnit.SECONDS));
            assertEquals(0, process.exitValue(), out);
            outputs.add(out);
        }
        for (String out : outputs) {
            assertTrue(out.startsWith(RESULTS + " "), out);
        }
        assertTrue(Files.list(dir).noneMatch(f -> f.getFileName().toString().startsWith(".tmp-")), "no temporary file left");
        CompilePipeline.Stats warm = run(noLlvm());
        assertEquals(OBJECTS, warm.cacheHits(), "whatever the interleaving, every entry is whole");
    }

    /**
     * Two different sources with the same fingerprint (length, CRC-32C and CRC-32): the second
     * shares the first's manifest key, and must still get its own code, eagerly and lazily.
     */
    @Test
    void aSourceWhoseFingerprintCollidesIsNeverGivenAnothersObjects() throws Throwable {
        byte[][] pair = collidingSources();
        assertTrue(!java.util.Arrays.equals(pair[0], pair[1]));
        assertTrue(java.util.Arrays.equals(CompilePipeline.fingerprint(pair[0]), CompilePipeline.fingerprint(pair[1])),
                "the two sources collide");
        LlvmCompiler llvm = PipelineFixtures.llvm();
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        for (int run = 0; run < 2; run++) {
            for (int which = 0; which < 2; which++) {
                try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
                    CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(() -> llvm).build();
                    p.loadLazy("pick.ll", pair[which]);
                    assertEquals(2 + which, call(host, "pick", 0), "lazily, run " + run + ", source " + which);
                }
                try (JitHost host = new JitHost()) {
                    CompilePipeline p = CompilePipeline.builder(host).cache(cache).llvm(() -> llvm).build();
                    p.load("pick.ll", pair[which]);
                    assertEquals(2 + which, call(host, "pick", 0), "eagerly, run " + run + ", source " + which);
                }
            }
        }
    }

    /**
     * A source returning 2 and one returning 3 that differ also in a comment, chosen so that both
     * CRCs agree: a CRC of messages of one length is affine, so the comment bits to flip solve a
     * linear system over GF(2) of 64 equations (by elimination, each equation a bit of the CRCs).
     */
    private static byte[][] collidingSources() {
        int comment = 160;
        String text = "; " + "b".repeat(comment) + "\ndefine i64 @pick(i64 %x) {\nentry:\n  ret i64 2\n}\n";
        byte[] base = utf8(text);
        int digit = text.indexOf("ret i64 2") + "ret i64 ".length();
        long baseCrc = crcs(base);
        // Column of each candidate bit: what flipping it alone does to the CRCs ('b' and 'c' differ in bit 0).
        long[] columns = new long[comment];
        for (int i = 0; i < comment; i++) {
            columns[i] = flipped(base, 2 + i) ^ baseCrc;
        }
        long target = flipped(base, digit) ^ baseCrc;   // '2' to '3'
        // Elimination: rows of (column value, set of candidates whose xor gives it).
        java.util.BitSet[] uses = new java.util.BitSet[comment];
        long[] value = columns.clone();
        for (int i = 0; i < comment; i++) {
            uses[i] = new java.util.BitSet();
            uses[i].set(i);
        }
        java.util.BitSet solution = new java.util.BitSet();
        long rest = target;
        for (int bit = 63; bit >= 0; bit--) {
            int pivot = -1;
            for (int i = 0; i < comment && pivot < 0; i++) {
                if ((value[i] >>> bit & 1) != 0 && Long.numberOfLeadingZeros(value[i]) == 63 - bit) {
                    pivot = i;
                }
            }
            if (pivot < 0) {
                continue;
            }
            for (int i = 0; i < comment; i++) {
                if (i != pivot && (value[i] >>> bit & 1) != 0) {
                    value[i] ^= value[pivot];
                    uses[i].xor(uses[pivot]);
                }
            }
            if ((rest >>> bit & 1) != 0) {
                rest ^= value[pivot];
                solution.xor(uses[pivot]);
            }
            value[pivot] = 0;
            uses[pivot] = new java.util.BitSet();
        }
        assertEquals(0, rest, "the comment's bits span the CRCs");
        byte[] other = base.clone();
        other[digit] ^= 1;
        solution.stream().forEach(i -> other[2 + i] ^= 1);
        return new byte[][] {base, other};
    }

    private static long flipped(byte[] base, int at) {
        byte[] copy = base.clone();
        copy[at] ^= 1;
        return crcs(copy);
    }

    private static long crcs(byte[] bytes) {
        java.util.zip.CRC32C c = new java.util.zip.CRC32C();
        c.update(bytes);
        java.util.zip.CRC32 d = new java.util.zip.CRC32();
        d.update(bytes);
        return c.getValue() << 32 | d.getValue();
    }

    private List<Path> entries() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.toString().endsWith(".spko")).sorted().toList();
        }
    }
}
