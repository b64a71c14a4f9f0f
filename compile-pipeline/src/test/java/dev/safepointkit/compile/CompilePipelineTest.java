package dev.safepointkit.compile;

import static dev.safepointkit.compile.PipelineFixtures.call;
import static dev.safepointkit.compile.PipelineFixtures.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.patch.CodePatcher;
import dev.safepointkit.roots.Mutator;
import dev.safepointkit.roots.SafepointCoordinator;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Queue;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Real IR through libLLVM: the runtime inlined, modules split, compiled code inlined and redefined. */
class CompilePipelineTest {
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

    @Test
    void inlinesTheRuntimesSmallFunctionAndCallsItsLargeOne() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        Path saved = dir.resolve("objects");
        try (JitHost host = new JitHost()) {
            CompilePipeline p = CompilePipeline.builder(host).llvm(() -> llvm).saveObjects(saved).build();
            JitObject rt = p.runtime("runtime.ll", utf8(PipelineFixtures.runtime()));
            JitObject main = p.load("main.ll", utf8(MAIN));
            assertEquals(Set.of("rt_small", "rt_large"), rt.definedGlobals(), "the runtime is compiled once, on its own");
            assertFalse(main.referencedSymbols().contains("rt_small"), "rt_small was inlined: " + main.referencedSymbols());
            assertTrue(main.referencedSymbols().contains("rt_large"), "rt_large is called: " + main.referencedSymbols());
            assertEquals(Set.of("main_fn"), main.definedGlobals(), "the runtime's copy is not compiled into main.ll");
            assertEquals(5 + 7 + PipelineFixtures.rtLarge(5), call(host, "main_fn", 5));
            assertTrue(Files.size(saved.resolve("main.ll.o")) > 0);
            assertTrue(Files.size(saved.resolve("runtime.ll.o")) > 0);
        }
    }

    @Test
    void theRuntimeIsSetOnceAndEveryLaterWayOfSettingItIsRefused() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        try (JitHost host = new JitHost()) {
            CompilePipeline p = CompilePipeline.builder(host).llvm(() -> llvm).build();
            p.runtime("runtime.ll", utf8(PipelineFixtures.runtime()));
            byte[] other = utf8(PipelineFixtures.runtime());
            for (String way : List.of("runtime", "runtimeLoaded", "compileRuntime")) {
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> {
                    switch (way) {
                        case "runtime" -> p.runtime("second.ll", other);
                        case "runtimeLoaded" -> p.runtimeLoaded("second.ll", other);
                        default -> p.compileRuntime("second.ll", other);
                    }
                }, way);
                assertTrue(e.getMessage().contains("runtime.ll"), way + ": " + e.getMessage());
            }
            assertEquals(List.of("runtime.ll"), host.objects().stream().map(JitObject::name).toList(),
                    "no second runtime was compiled or loaded");
            JitObject main = p.load("main.ll", utf8(MAIN));
            assertFalse(main.referencedSymbols().contains("rt_small"), "the first runtime is still inlined");
            assertEquals(5 + 7 + PipelineFixtures.rtLarge(5), call(host, "main_fn", 5));
        }
    }

    @Test
    void aRuntimeCompiledAheadOfTimeIsLoadedElsewhereAndOnlyItsInlineCopyIsUsedThere() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        byte[] runtimeObject;
        byte[] mainObject;
        try (JitHost host = new JitHost()) {
            CompilePipeline ahead = CompilePipeline.builder(host).llvm(() -> llvm).build();
            runtimeObject = ahead.compileRuntime("runtime.ll", utf8(PipelineFixtures.runtime()));
            mainObject = ahead.compile("main.ll", utf8(MAIN));
            assertEquals(List.of(), host.objects(), "compiling ahead of time loads nothing");
        }
        try (JitHost host = new JitHost()) {
            host.load("runtime.ll", java.lang.foreign.MemorySegment.ofArray(runtimeObject));
            JitObject main = host.load("main.ll", java.lang.foreign.MemorySegment.ofArray(mainObject));
            assertFalse(main.referencedSymbols().contains("rt_small"), "compiled ahead with the runtime inlined");
            assertEquals(5 + 7 + PipelineFixtures.rtLarge(5), call(host, "main_fn", 5));
        }
        try (JitHost host = new JitHost()) {
            host.load("runtime.ll", java.lang.foreign.MemorySegment.ofArray(runtimeObject));
            CompilePipeline p = CompilePipeline.builder(host).llvm(() -> llvm).build();
            p.runtimeLoaded("runtime.ll", utf8(PipelineFixtures.runtime()));
            assertEquals(1, host.objects().size(), "runtimeLoaded compiles and loads nothing");
            JitObject main = p.load("main.ll", utf8(MAIN));
            assertFalse(main.referencedSymbols().contains("rt_small"), "later compiles inline the loaded runtime's copy");
            assertTrue(main.referencedSymbols().contains("rt_large"), "and call its one compiled copy");
            assertEquals(1, p.stats().compiledFunctions(), "only main_fn was compiled here");
            assertEquals(5 + 7 + PipelineFixtures.rtLarge(5), call(host, "main_fn", 5));
        }
    }

    @Test
    void aRuntimeCompileThatFailedSetsNoRuntimeSoTheCallMayBeMadeAgain() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        try (JitHost host = new JitHost()) {
            CompilePipeline p = CompilePipeline.builder(host).llvm(() -> llvm).build();
            assertThrows(JitLoadException.class, () -> p.compileRuntime("runtime.ll", utf8("define i64 @rt_small( {\n")));
            byte[] object = p.compileRuntime("runtime.ll", utf8(PipelineFixtures.runtime()));
            assertTrue(object.length > 0);
            host.load("runtime.ll", java.lang.foreign.MemorySegment.ofArray(object));
            host.load("main.ll", java.lang.foreign.MemorySegment.ofArray(p.compile("main.ll", utf8(MAIN))));
            assertEquals(5 + 7 + PipelineFixtures.rtLarge(5), call(host, "main_fn", 5), "the second call's runtime is the one set");
        }
    }

    @Test
    void settingsWithoutAnOptimizationPipelineAreRefusedAndNoGcPassesMeansBlank() {
        for (String blank : new String[] {null, "", "  \n"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new CompilePipeline.Settings(blank, "rewrite-statepoints-for-gc", LlvmCompiler.Options.DEFAULT),
                    "optimization " + blank);
            assertTrue(e.getMessage().contains("blank"), e.getMessage());
        }
        assertEquals("", new CompilePipeline.Settings("default<O0>", null, LlvmCompiler.Options.DEFAULT).gcPasses());
    }

    @Test
    void lazyFunctionsInlineTheRuntimeToo() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            p.runtime("runtime.ll", utf8(PipelineFixtures.runtime()));
            assertEquals(List.of("main_fn"), p.loadLazy("main.ll", utf8(MAIN)));
            assertEquals(List.of("runtime.ll"), host.objects().stream().map(JitObject::name).toList(),
                    "main_fn is not compiled before its first call, and main.ll has no data");
            assertEquals(5 + 7 + PipelineFixtures.rtLarge(5), call(host, "main_fn", 5));
            JitObject body = host.objects().getLast();
            assertEquals("main.ll.main_fn", body.name());
            assertFalse(body.referencedSymbols().contains("rt_small"), body.referencedSymbols().toString());
            assertTrue(body.referencedSymbols().contains("rt_large"));
        }
    }

    @Test
    void aSplitModuleBehavesLikeTheWholeOne() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        long[] whole = runSplitProgram(llvm, false);
        long[] split = runSplitProgram(llvm, true);
        assertEquals(List.of(10010L, 13010L, 11L, 26L), List.of(whole[0], whole[1], whole[2], whole[3]), "the unsplit module's own results");
        assertEquals(List.of(whole[0], whole[1], whole[2], whole[3]), List.of(split[0], split[1], split[2], split[3]));
    }

    /** entry(3) twice (the counter persists), dispatch through both table slots. */
    private static long[] runSplitProgram(LlvmCompiler llvm, boolean lazy) throws Throwable {
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            if (lazy) {
                List<String> declared = p.loadLazy("split.ll", utf8(PipelineFixtures.SPLIT));
                assertEquals(6, declared.size(), "every function, local ones included: " + declared);
                assertEquals(List.of("split.ll.data"), host.objects().stream().map(JitObject::name).toList(),
                        "only the data is loaded before the first call");
            } else {
                p.load("split.ll", utf8(PipelineFixtures.SPLIT));
            }
            long[] r = {call(host, "entry", 3), call(host, "entry", 3), call(host, "dispatch", 0, 5), call(host, "dispatch", 1, 5)};
            if (lazy) {
                assertEquals(7, host.objects().size(), "the data and one object per function reached: " + host.objects());
            }
            return r;
        }
    }

    @Test
    void functionsOfALargeModuleAreCutThroughItsPartitions() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        int n = 160;
        StringBuilder ir = new StringBuilder();
        for (int i = 0; i < n; i++) {
            ir.append("@g").append(i).append(" = private global i64 ").append(i * 7).append('\n');
        }
        for (int i = 0; i < n; i++) {
            ir.append("define i64 @f").append(i).append("(i64 %x) {\nentry:\n  %g = load i64, ptr @g").append(i).append('\n');
            ir.append("  %m = mul i64 %x, ").append(i).append("\n  %s = add i64 %m, %g\n");
            if (i + 1 < n) {
                ir.append("  %n = call i64 @f").append(i + 1).append("(i64 %x)\n  %r = add i64 %s, %n\n  ret i64 %r\n}\n");
            } else {
                ir.append("  ret i64 %s\n}\n");
            }
        }
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host);
             CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build()) {
            p.loadLazy("many.ll", utf8(ir.toString()));
            for (int from : new int[] {n - 3, 5, n / 2}) {
                long expected = 0;
                for (int i = from; i < n; i++) {
                    expected += 2L * i + i * 7L;
                }
                assertEquals(expected, call(host, "f" + from, 2), "f" + from);
            }
            assertEquals(1 + n - 5, host.objects().size(), "the data and each function from f5 on");
        }
    }

    @Test
    void aCutDefinesItsFunctionAloneAndInlinesNoNeighbourItWasNotGiven() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        StringBuilder ir = new StringBuilder("@table = global [2 x ptr] [ptr @callee, ptr @other]\n");
        ir.append("define i64 @caller(i64 %x) {\nentry:\n  %c = call i64 @callee(i64 %x)\n  %r = add i64 %c, 1\n  ret i64 %r\n}\n");
        ir.append("define i64 @callee(i64 %x) {\nentry:\n  %r = mul i64 %x, 5\n  ret i64 %r\n}\n");
        ir.append("define i64 @other(i64 %x) {\nentry:\n  %r = mul i64 %x, 7\n  ret i64 %r\n}\n");
        for (int i = 0; i < 2 * FunctionCuts.CHUNK; i++) {
            ir.append("define i64 @pad").append(i).append("(i64 %x) {\nentry:\n  %r = call i64 @other(i64 %x)\n  ret i64 %r\n}\n");
        }
        ir.append("define i64 @last(i64 %x) {\nentry:\n  %r = call i64 @caller(i64 %x)\n  ret i64 %r\n}\n");
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host);
             CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build()) {
            p.loadLazy("cuts.ll", utf8(ir.toString()));
            assertEquals(5 * 4 + 1, call(host, "last", 4), "last, from another chunk, reaches caller and callee");
            JitObject last = host.objects().stream().filter(o -> o.name().equals("cuts.ll.last")).findFirst().orElseThrow();
            JitObject caller = host.objects().stream().filter(o -> o.name().equals("cuts.ll.caller")).findFirst().orElseThrow();
            assertEquals(Set.of("last"), last.definedGlobals());
            assertEquals(Set.of("caller"), caller.definedGlobals(), "a cut defines its function alone, not the data or a neighbour");
            assertTrue(caller.referencedSymbols().contains("callee"),
                    "callee was not compiled when caller was, so no body of it was offered: " + caller.referencedSymbols());
            assertEquals(Set.of(), p.dependents("callee"));
        }
    }

    @Test
    void aCompiledFunctionIsInlinedIntoALaterModuleAndItsRedefinitionReachesTheDependent() throws Throwable {
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
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            p.loadLazy("lib.ll", utf8(lib));
            assertEquals(30, call(host, "scale", 10));
            p.loadLazy("user.ll", utf8(user));
            assertEquals(31, call(host, "user", 10));
            JitObject userBody = host.objects().getLast();
            assertFalse(userBody.referencedSymbols().contains("scale"), "scale's kept IR was inlined: " + userBody.referencedSymbols());
            assertEquals(Set.of("user"), p.dependents("scale"));

            List<String> recompiled = p.redefine("scale", "scale-v2.ll", utf8("""
                    define i64 @scale(i64 %x) {
                    entry:
                      %r = mul i64 %x, 100
                      ret i64 %r
                    }
                    """));
            assertEquals(List.of("user"), recompiled);
            assertEquals(1000, call(host, "scale", 10), "callers through the stub run the new body");
            assertEquals(1001, call(host, "user", 10), "the dependent that had inlined the old body runs the new one");
        }
    }

    /**
     * aaa inlined both scale and mid, and mid inlined scale: aaa comes first among scale's
     * dependents, yet must be compiled again only after mid, or it is given mid's old body, which
     * holds the old scale.
     */
    @Test
    void aDependentThatInlinedAnotherDependentIsRecompiledAfterIt() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            p.loadLazy("lib.ll", utf8("define i64 @scale(i64 %x) {\n  %r = mul i64 %x, 3\n  ret i64 %r\n}\n"));
            p.loadLazy("mid.ll", utf8("declare i64 @scale(i64)\n"
                    + "define i64 @mid(i64 %x) {\n  %s = call i64 @scale(i64 %x)\n  %r = add i64 %s, 1\n  ret i64 %r\n}\n"));
            p.loadLazy("aaa.ll", utf8("declare i64 @scale(i64)\ndeclare i64 @mid(i64)\n"
                    + "define i64 @aaa(i64 %x) {\n  %m = call i64 @mid(i64 %x)\n  %s = call i64 @scale(i64 %x)\n"
                    + "  %r = add i64 %m, %s\n  ret i64 %r\n}\n"));
            assertEquals(30, call(host, "scale", 10));
            assertEquals(31, call(host, "mid", 10));
            assertEquals(61, call(host, "aaa", 10));
            assertEquals(Set.of("mid", "aaa"), p.dependents("scale"));
            assertEquals(Set.of("aaa"), p.dependents("mid"));
            JitObject aaa = host.objects().getLast();
            assertFalse(aaa.referencedSymbols().contains("mid") || aaa.referencedSymbols().contains("scale"),
                    "aaa inlined both: " + aaa.referencedSymbols());

            List<String> recompiled = p.redefine("scale", "scale-v2.ll",
                    utf8("define i64 @scale(i64 %x) {\n  %r = mul i64 %x, 100\n  ret i64 %r\n}\n"));
            assertEquals(Set.of("mid", "aaa"), Set.copyOf(recompiled));
            assertEquals(1001, call(host, "mid", 10));
            assertEquals(1001 + 1000, call(host, "aaa", 10), "aaa runs neither the old scale nor the old mid");
            JitObject aaaAgain = host.objects().stream().filter(o -> o.name().equals("aaa.ll.aaa")).reduce((a, b) -> b).orElseThrow();
            assertFalse(aaaAgain.referencedSymbols().contains("mid"), "recompiled after mid, so given its new body: "
                    + aaaAgain.referencedSymbols());
        }
    }

    /**
     * scale's new body compiles and loads, then mid's recompile fails (a directory stands where
     * its saved object would go): the redefinition must leave nothing behind, not even scale's new
     * kept IR, which top, compiled afterwards, would otherwise inline while scale runs the old code.
     */
    @Test
    void aRedefinitionWhoseDependentCannotBeRecompiledLeavesNothingOfItself(@TempDir Path saved) throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).saveObjects(saved).build();
            p.loadLazy("lib.ll", utf8("define i64 @scale(i64 %x) {\n  %r = mul i64 %x, 3\n  ret i64 %r\n}\n"));
            p.loadLazy("mid.ll", utf8("declare i64 @scale(i64)\n"
                    + "define i64 @mid(i64 %x) {\n  %s = call i64 @scale(i64 %x)\n  %r = add i64 %s, 1\n  ret i64 %r\n}\n"));
            p.loadLazy("top.ll", utf8("declare i64 @scale(i64)\n"
                    + "define i64 @top(i64 %x) {\n  %s = call i64 @scale(i64 %x)\n  %r = add i64 %s, 5\n  ret i64 %r\n}\n"));
            assertEquals(30, call(host, "scale", 10));
            assertEquals(31, call(host, "mid", 10));
            assertEquals(Set.of("mid"), p.dependents("scale"));
            List<JitObject> before = List.copyOf(host.objects());
            Path midObject = saved.resolve("mid.ll.mid.o");
            Files.deleteIfExists(midObject);
            Files.createDirectories(midObject);

            assertThrows(java.io.IOException.class, () -> p.redefine("scale", "scale-v2.ll",
                    utf8("define i64 @scale(i64 %x) {\n  %r = mul i64 %x, 100\n  ret i64 %r\n}\n")));
            assertEquals(before, host.objects(), "scale's new object is unloaded again");
            assertEquals(30, call(host, "scale", 10));
            assertEquals(31, call(host, "mid", 10));
            assertEquals(Set.of("mid"), p.dependents("scale"));
            assertEquals(35, call(host, "top", 10), "top, compiled now, is given scale's old body");

            Files.delete(midObject);
            assertEquals(Set.of("mid", "top"), Set.copyOf(p.redefine("scale", "scale-v2.ll",
                    utf8("define i64 @scale(i64 %x) {\n  %r = mul i64 %x, 100\n  ret i64 %r\n}\n"))));
            assertEquals(1000, call(host, "scale", 10));
            assertEquals(1001, call(host, "mid", 10));
            assertEquals(1005, call(host, "top", 10));
        }
    }

    @Test
    void editAndContinueWhileTwoThreadsCallInALoop() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        SafepointCoordinator coordinator = new SafepointCoordinator(0);
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, coordinator, failures::add)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            p.loadLazy("loop.ll", utf8("""
                    declare i64 @helper(i64)

                    define i64 @work(i64 %x) {
                    entry:
                      %h = call i64 @helper(i64 %x)
                      %r = add i64 %h, 1
                      ret i64 %r
                    }
                    """));
            p.loadLazy("helper.ll", utf8("""
                    define i64 @helper(i64 %x) {
                    entry:
                      %r = mul i64 %x, 2
                      ret i64 %r
                    }
                    """));
            MethodHandle work = PipelineFixtures.handle(host, "work", 1);
            assertEquals(21L, (long) work.invokeExact(10L), "work compiles first, so it calls helper and inlines nothing");
            JitObject oldHelper = host.objects().getLast();
            assertEquals("helper.ll.helper", oldHelper.name());

            AtomicBoolean redefined = new AtomicBoolean();
            AtomicBoolean done = new AtomicBoolean();
            Queue<Throwable> errors = new ConcurrentLinkedQueue<>();
            AtomicLong oldSeen = new AtomicLong();
            AtomicLong newSeen = new AtomicLong();
            CountDownLatch running = new CountDownLatch(2);
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                threads.add(Thread.ofPlatform().start(() -> {
                    try (Mutator m = coordinator.attach()) {
                        running.countDown();
                        while (!done.get()) {
                            boolean after = redefined.get();
                            long r;
                            try (var scope = m.enter()) {
                                r = (long) work.invokeExact(10L);
                            }
                            if (r == 21L && !after) {
                                oldSeen.incrementAndGet();
                            } else if (r == 301L) {
                                newSeen.incrementAndGet();
                            } else {
                                throw new AssertionError("work(10) = " + r + (after ? " after the redefinition returned" : ""));
                            }
                        }
                    } catch (Throwable e) {
                        errors.add(e);
                    }
                }));
            }
            assertTrue(running.await(10, TimeUnit.SECONDS));
            Thread.sleep(50);
            try {
                assertEquals(List.of(), p.redefine("helper", "helper-v2.ll", utf8("""
                        define i64 @helper(i64 %x) {
                        entry:
                          %r = mul i64 %x, 30
                          ret i64 %r
                        }
                        """)), "work never inlined helper");
                redefined.set(true);
                Thread.sleep(50);
                // The old body is freed at a stop, while both threads keep calling.
                assertEquals(1, patcher.safepoint(), "the old helper is freed at a safepoint");
                Thread.sleep(20);
            } finally {
                done.set(true);
                for (Thread t : threads) {
                    t.join();
                }
            }
            for (Throwable e : errors) {
                throw e;
            }
            assertFalse(host.objects().contains(oldHelper), "the old code is unloaded");
            assertTrue(oldSeen.get() > 0 && newSeen.get() > 0, "both bodies ran: old " + oldSeen + ", new " + newSeen);
            assertEquals(301L, (long) work.invokeExact(10L));
            assertEquals(List.of(), failures);
        }
    }

    /**
     * Two mutators make sixty functions, each of which inlines helper, compile on their first
     * calls (through their stubs, on the mutators' threads) while helper is redefined again and
     * again: a function compiled before a redefinition is recompiled by it, one compiled after is
     * given the new body, and once a redefinition has returned no call runs an older body.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)  // a deadlock fails, not hangs
    void lazyCompilesOnMutatorsRacingRedefinitionsInstallNoStaleBody() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        SafepointCoordinator coordinator = new SafepointCoordinator(0);
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        int n = 60;
        long[] factors = {2, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, coordinator, failures::add)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            p.loadLazy("helper.ll", utf8(helperTimes(factors[0])));
            assertEquals(20, call(host, "helper", 10), "helper is compiled first, so every user inlines it");
            StringBuilder users = new StringBuilder("declare i64 @helper(i64)\n");
            for (int i = 0; i < n; i++) {
                users.append("define i64 @use").append(i).append("(i64 %x) {\n  %h = call i64 @helper(i64 %x)\n  %r = add i64 %h, ")
                        .append(i).append("\n  ret i64 %r\n}\n");
            }
            p.loadLazy("users.ll", utf8(users.toString()));
            List<MethodHandle> uses = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                uses.add(PipelineFixtures.handle(host, "use" + i, 1));
            }
            AtomicLong returned = new AtomicLong();   // how many redefinitions have returned
            AtomicBoolean done = new AtomicBoolean();
            AtomicLong roundsAfterLast = new AtomicLong();
            Queue<Throwable> errors = new ConcurrentLinkedQueue<>();
            CountDownLatch started = new CountDownLatch(2);
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                boolean down = t == 1;
                threads.add(Thread.ofPlatform().daemon().start(() -> {
                    try (Mutator m = coordinator.attach()) {
                        started.countDown();
                        while (!done.get()) {
                            int after = (int) returned.get();
                            for (int k = 0; k < n; k++) {
                                int i = down ? n - 1 - k : k;
                                long r;
                                try (var scope = m.enter()) {
                                    r = (long) uses.get(i).invokeExact(10L);
                                }
                                boolean current = false;
                                for (int v = after; v < factors.length; v++) {
                                    current |= r == factors[v] * 10 + i;
                                }
                                if (!current) {
                                    throw new AssertionError("use" + i + "(10) = " + r + " after " + after + " redefinitions returned");
                                }
                            }
                            if (after == factors.length - 1) {
                                roundsAfterLast.incrementAndGet();
                            }
                        }
                    } catch (Throwable e) {
                        errors.add(e);
                    }
                }));
            }
            try {
                assertTrue(started.await(10, TimeUnit.SECONDS));
                for (int v = 1; v < factors.length; v++) {
                    p.redefine("helper", "helper-v" + v + ".ll", utf8(helperTimes(factors[v])));
                    returned.set(v);
                    Thread.sleep(3);
                }
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (roundsAfterLast.get() < 4 && errors.isEmpty() && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
            } finally {
                done.set(true);
                for (Thread t : threads) {
                    t.join();
                }
            }
            for (Throwable e : errors) {
                throw e;
            }
            assertTrue(roundsAfterLast.get() >= 4, "the mutators called every function after the last redefinition");
            for (int i = 0; i < n; i++) {
                assertEquals(factors[factors.length - 1] * 10 + i, (long) uses.get(i).invokeExact(10L), "use" + i);
            }
            assertEquals(List.of(), failures);
        }
    }

    /**
     * Two threads redefine two functions at once, over and over, while a mutator calls functions
     * that inline both: redefinitions run one at a time, so each recompiles the users with the
     * other function's body as it stands then, and once both threads are done every user holds
     * the last body of each. Calls made meanwhile return a sum of some body of each. Each cache
     * store of a redefining thread's compiles, and each redefinition's patch, is noted and slowed
     * down, so that two redefinitions running at once, or one that let go of its locks before
     * patching, would take turns: the turns must come one whole redefinition at a time.
     */
    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)  // a deadlock fails, not hangs
    void twoRedefinitionsAtOnceLeaveEveryUserWithTheLastBodyOfEach() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        SafepointCoordinator coordinator = new SafepointCoordinator(0);
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        int n = 12;
        // use_i(10) = 10 a + 10,000 b + i: a below 100, so a, b and i can be read back from a result.
        long[] as = LongStream.rangeClosed(1, 16).map(k -> 5 * k + 11).toArray();
        long[] bs = LongStream.rangeClosed(1, 16).map(k -> k + 1).toArray();
        ThreadGroup redefiners = new ThreadGroup("redefiners");
        // What the redefining threads did, in order: a cache store of a compile, or the patch that ends a redefinition.
        record Step(Thread thread, boolean patch) {
        }
        List<Step> steps = Collections.synchronizedList(new ArrayList<>());
        ObjectCache cache = new ObjectCache(dir.resolve("cache"), Long.MAX_VALUE);
        cache.beforeRenaming = () -> {
            if (Thread.currentThread().getThreadGroup() == redefiners) {
                steps.add(new Step(Thread.currentThread(), false));
                pause(1);
            }
        };
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, coordinator, failures::add)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).cache(cache).build();
            // Long enough for the other thread to compile and store, were the locks let go before the patch.
            p.beforePatching = () -> {
                pause(30);
                steps.add(new Step(Thread.currentThread(), true));
            };
            p.loadLazy("alpha.ll", utf8(timesNamed("alpha", as[0])));
            p.loadLazy("beta.ll", utf8(timesNamed("beta", bs[0] * 1000)));
            assertEquals(as[0] * 10, call(host, "alpha", 10), "alpha is compiled first, so every user inlines it");
            assertEquals(bs[0] * 10_000, call(host, "beta", 10), "and beta");
            StringBuilder users = new StringBuilder("declare i64 @alpha(i64)\ndeclare i64 @beta(i64)\n");
            for (int i = 0; i < n; i++) {
                users.append("define i64 @use").append(i).append("(i64 %x) {\n  %a = call i64 @alpha(i64 %x)\n")
                        .append("  %b = call i64 @beta(i64 %x)\n  %s = add i64 %a, %b\n  %r = add i64 %s, ")
                        .append(i).append("\n  ret i64 %r\n}\n");
            }
            p.loadLazy("users.ll", utf8(users.toString()));
            List<MethodHandle> uses = new ArrayList<>();
            Set<String> userNames = new TreeSet<>();
            for (int i = 0; i < n; i++) {
                uses.add(PipelineFixtures.handle(host, "use" + i, 1));
                userNames.add("use" + i);
                assertEquals(as[0] * 10 + bs[0] * 10_000 + i, call(host, "use" + i, 10), "use" + i + " before");
            }
            assertEquals(userNames, p.dependents("alpha"));
            assertEquals(userNames, p.dependents("beta"));
            Set<Long> aSet = Arrays.stream(as).boxed().collect(Collectors.toSet());
            Set<Long> bSet = Arrays.stream(bs).boxed().collect(Collectors.toSet());
            Queue<Throwable> errors = new ConcurrentLinkedQueue<>();
            AtomicBoolean done = new AtomicBoolean();
            AtomicLong calls = new AtomicLong();
            CountDownLatch go = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            threads.add(Thread.ofPlatform().daemon().start(() -> {
                try (Mutator m = coordinator.attach()) {
                    while (!done.get()) {
                        for (int i = 0; i < n; i++) {
                            long r;
                            try (var scope = m.enter()) {
                                r = (long) uses.get(i).invokeExact(10L);
                            }
                            long b = r / 10_000;
                            long rest = r % 10_000 - i;
                            if (!bSet.contains(b) || rest % 10 != 0 || !aSet.contains(rest / 10)) {
                                throw new AssertionError("use" + i + "(10) = " + r + ": not 10 a + 10,000 b + " + i
                                        + " for any body a of alpha and b of beta");
                            }
                            calls.incrementAndGet();
                        }
                    }
                } catch (Throwable e) {
                    errors.add(e);
                }
            }));
            for (int t = 0; t < 2; t++) {
                boolean alpha = t == 0;
                threads.add(Thread.ofPlatform().group(redefiners).daemon().start(() -> {
                    try {
                        go.await();
                        for (int v = 1; v < as.length; v++) {
                            List<String> recompiled = alpha
                                    ? p.redefine("alpha", "alpha-v" + v + ".ll", utf8(timesNamed("alpha", as[v])))
                                    : p.redefine("beta", "beta-v" + v + ".ll", utf8(timesNamed("beta", bs[v] * 1000)));
                            if (!new TreeSet<>(recompiled).equals(userNames)) {
                                throw new AssertionError((alpha ? "alpha" : "beta") + " v" + v + " recompiled " + recompiled);
                            }
                        }
                    } catch (Throwable e) {
                        errors.add(e);
                    }
                }));
            }
            go.countDown();
            try {
                for (Thread t : threads.subList(1, 3)) {
                    t.join();
                }
            } finally {
                done.set(true);
                for (Thread t : threads) {
                    t.join();
                }
            }
            // Every thread's failure is reported: the first, with the others suppressed in it.
            Throwable first = errors.poll();
            if (first != null) {
                errors.forEach(first::addSuppressed);
                throw first;
            }
            assertTrue(calls.get() > 0, "the mutator called the users while they were redefined");
            int turns = 0;
            for (int k = 1; k < steps.size(); k++) {
                Step before = steps.get(k - 1);
                turns += steps.get(k).thread() == before.thread() ? 0 : 1;
                // A redefinition patches right after its own compiles: no other one stored in between.
                assertTrue(!steps.get(k).patch() || before.thread() == steps.get(k).thread(),
                        "step " + k + ": a redefinition patched after another one's compile");
            }
            // One redefinition at a time: the thread changes at most where one redefinition ends
            // (with its patch) and the next begins.
            int redefinitions = 2 * (as.length - 1);
            assertEquals(redefinitions, steps.stream().filter(Step::patch).count(), "one patch per redefinition");
            assertTrue(steps.size() >= redefinitions * (n + 2), steps.size() + " steps");
            assertTrue(turns < redefinitions, "the redefining threads took " + turns + " turns at compiling and patching in "
                    + redefinitions + " redefinitions");
            long a = as[as.length - 1];
            long b = bs[bs.length - 1];
            assertEquals(a * 10, call(host, "alpha", 10), "alpha's last body");
            assertEquals(b * 10_000, call(host, "beta", 10), "beta's last body");
            for (int i = 0; i < n; i++) {
                assertEquals(a * 10 + b * 10_000 + i, (long) uses.get(i).invokeExact(10L), "use" + i + " holds the last body of each");
            }
            assertEquals(List.of(), failures);
        }
    }

    private static void pause(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String timesNamed(String name, long factor) {
        return "define i64 @" + name + "(i64 %x) {\n  %r = mul i64 %x, " + factor + "\n  ret i64 %r\n}\n";
    }

    private static String helperTimes(long factor) {
        return "define i64 @helper(i64 %x) {\n  %r = mul i64 %x, " + factor + "\n  ret i64 %r\n}\n";
    }

    @Test
    void aRedefinitionMustDefineTheOneFunction() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            p.loadLazy("split.ll", utf8(PipelineFixtures.SPLIT));
            JitLoadException e = assertThrows(JitLoadException.class, () -> p.redefine("bump", "two.ll", utf8("""
                    define i64 @bump(i64 %x) {
                      ret i64 %x
                    }
                    define i64 @other(i64 %x) {
                      ret i64 %x
                    }
                    """)));
            assertTrue(e.getMessage().contains("must define that one function"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> p.redefine("nope", "n.ll", utf8("")));
            assertEquals(3, call(host, "bump", 3), "the failed redefinition changed nothing");
        }
    }

    @Test
    void withoutAPatcherLazyLoadingAndRedefinitionAreRefusedByName() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        try (JitHost host = new JitHost()) {
            CompilePipeline p = CompilePipeline.builder(host).llvm(() -> llvm).build();
            IllegalStateException lazy = assertThrows(IllegalStateException.class,
                    () -> p.loadLazy("split.ll", utf8(PipelineFixtures.SPLIT)));
            assertTrue(lazy.getMessage().contains("needs a patcher"), lazy.getMessage());
            IllegalStateException redefine = assertThrows(IllegalStateException.class,
                    () -> p.redefine("bump", "b.ll", utf8("define i64 @bump(i64 %x) {\n  ret i64 %x\n}\n")));
            assertTrue(redefine.getMessage().contains("needs a patcher"), redefine.getMessage());
        }
    }

    @Test
    void aRedefinitionMustKeepTheFunctionsTypeEvenAfterAnEarlierRedefinition() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            p.loadLazy("sum.ll", utf8("""
                    define i64 @sum(i64 %a, i64 %b) {
                      %r = add i64 %a, %b
                      ret i64 %r
                    }
                    """));
            assertEquals(7, call(host, "sum", 3, 4));
            List<String> others = List.of(
                    "define double @sum(double %a, double %b) {\n  %r = fadd double %a, %b\n  ret double %r\n}\n",
                    "define i64 @sum(i64 %a, i64 %b, i64 %c) {\n  ret i64 %c\n}\n",
                    "define i32 @sum(i64 %a, i64 %b) {\n  ret i32 0\n}\n",
                    "define i64 @sum(i64 %a, ...) {\n  ret i64 %a\n}\n",
                    "define { i64, i64 } @sum(i64 %a, i64 %b) {\n  ret { i64, i64 } zeroinitializer\n}\n");
            for (String other : others) {
                JitLoadException e = assertThrows(JitLoadException.class, () -> p.redefine("sum", "sum-bad.ll", utf8(other)), other);
                assertTrue(e.getMessage().contains("callers were compiled against i64 (i64, i64)"), e.getMessage());
                assertEquals(7, call(host, "sum", 3, 4), "the refused redefinition changed nothing: " + other);
            }
            p.redefine("sum", "sum-v2.ll", utf8("""
                    define i64 @sum(i64 %a, i64 %b) {
                      %r = mul i64 %a, %b
                      ret i64 %r
                    }
                    """));
            assertEquals(12, call(host, "sum", 3, 4), "the same type is accepted");
            JitLoadException e = assertThrows(JitLoadException.class, () -> p.redefine("sum", "sum-bad.ll", utf8(others.get(1))));
            assertTrue(e.getMessage().contains("has type i64 (i64, i64, i64), but its callers were compiled against i64 (i64, i64)"),
                    "checked against the current (redefined) definition: " + e.getMessage());
            assertEquals(12, call(host, "sum", 3, 4));
        }
    }

    @Test
    void refusesWhatItCannotSplitNamingIt() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            JitLoadException e = assertThrows(JitLoadException.class, () -> p.loadLazy("alias.ll", utf8("""
                    define i64 @f(i64 %x) {
                      ret i64 %x
                    }
                    @g = alias i64 (i64), ptr @f
                    """)));
            assertTrue(e.getMessage().contains("alias"), e.getMessage());
            JitLoadException ctors = assertThrows(JitLoadException.class, () -> p.loadLazy("ctors.ll", utf8("""
                    define void @init() {
                      ret void
                    }
                    @llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @init, ptr null }]
                    """)));
            assertTrue(ctors.getMessage().contains("llvm.global_ctors") && ctors.getMessage().contains("appending"), ctors.getMessage());
        }
    }
}
