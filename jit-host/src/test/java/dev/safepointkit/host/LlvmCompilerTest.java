package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.stackmap.StatepointRecord;
import dev.safepointkit.stackmap.testing.LlvmTools;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** IR compiled at run time through libLLVM 19 (installed in CI), loaded and run. */
class LlvmCompilerTest {
    static final AtomicInteger POLLS = new AtomicInteger();

    static void rtPoll() {
        POLLS.incrementAndGet();
    }

    private static LlvmCompiler compiler() throws LlvmUnavailableException {
        return LlvmTools.requireAvailable(LlvmCompiler::open);
    }

    @Test
    void compilesIrAtRunTimeAndRunsIt() throws Throwable {
        String ir = """
                define i64 @triple_plus(i64 %x, i64 %y) {
                entry:
                  %t = mul i64 %x, 3
                  %s = add i64 %t, %y
                  ret i64 %s
                }
                """;
        byte[] object = compiler().compile("triple.ll", ir, LlvmCompiler.Options.DEFAULT);
        try (JitHost host = new JitHost()) {
            host.load("triple.o", MemorySegment.ofArray(object));
            long r = (long) host.downcall("triple_plus", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG)).invokeExact(14L, 3L);
            assertEquals(45L, r);
        }
    }

    @Test
    void rewritesStatepointsForGcAndTheLoadedObjectCarriesTheRecord() throws Throwable {
        String ir = """
                declare void @rt_poll()

                define ptr addrspace(1) @keep(ptr addrspace(1) %obj) gc "statepoint-example" {
                entry:
                  call void @rt_poll()
                  ret ptr addrspace(1) %obj
                }
                """;
        LlvmCompiler llvm = compiler();
        byte[] plain = llvm.compile("keep.ll", ir, LlvmCompiler.Options.DEFAULT);
        byte[] rewritten = llvm.compile("keep.ll", ir, LlvmCompiler.Options.DEFAULT.withPasses("rewrite-statepoints-for-gc"));
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            host.defineUpcall("rt_poll", MethodHandles.lookup().findStatic(LlvmCompilerTest.class, "rtPoll",
                    MethodType.methodType(void.class)), FunctionDescriptor.ofVoid(), arena);
            JitObject without = host.load("plain.o", MemorySegment.ofArray(plain));
            assertTrue(without.loaded().stackMaps().isEmpty(), "no statepoints without the pass");
            host.unload(without, false);

            JitObject with = host.load("keep.o", MemorySegment.ofArray(rewritten));
            EmittedFunction keep = with.functions().getFirst();
            assertEquals("keep", keep.name());
            assertEquals(1, keep.stackMapRecords().size());
            StatepointRecord sp = StatepointRecord.of(keep.stackMapRecords().getFirst());
            assertEquals(1, sp.pairCount(), "obj is live across the poll");
            int before = POLLS.get();
            MemorySegment obj = arena.allocate(16);
            MemorySegment back = (MemorySegment) host.downcall("keep", FunctionDescriptor.of(ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS)).invokeExact(obj);
            assertEquals(obj.address(), back.address());
            assertEquals(before + 1, POLLS.get());
        }
    }

    /** A module of {@code ir} in a fresh context, through the C API the compiler binds; the context is returned second. */
    private static MemorySegment[] parse(LlvmCompiler llvm, Arena arena, String name, String ir) throws Throwable {
        var addr = ValueLayout.ADDRESS;
        MemorySegment context = (MemorySegment) llvm.function("LLVMContextCreate", FunctionDescriptor.of(addr)).invokeExact();
        MemorySegment text = arena.allocateFrom(ir);
        MemorySegment buffer = (MemorySegment) llvm.function("LLVMCreateMemoryBufferWithMemoryRangeCopy",
                FunctionDescriptor.of(addr, addr, ValueLayout.JAVA_LONG, addr)).invokeExact(text, text.byteSize() - 1, arena.allocateFrom(name));
        MemorySegment out = arena.allocate(addr);
        MemorySegment message = arena.allocate(addr);
        int failed = (int) llvm.function("LLVMParseIRInContext", FunctionDescriptor.of(ValueLayout.JAVA_INT, addr, addr, addr, addr))
                .invokeExact(context, buffer, out, message);
        assertEquals(0, failed, name + " parses");
        return new MemorySegment[] {out.get(addr, 0), context};
    }

    @Test
    void aKeptMachineCompilesModuleAfterModuleAndRefusesOnceClosed() throws Throwable {
        LlvmCompiler llvm = compiler();
        MethodHandle disposeContext = llvm.function("LLVMContextDispose", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
        try (Arena arena = Arena.ofConfined(); JitHost host = new JitHost()) {
            LlvmCompiler.Machine machine = llvm.machine(LlvmCompiler.DEFAULT_TRIPLE, LlvmCompiler.Options.DEFAULT);
            for (int k = 2; k <= 3; k++) {
                MemorySegment[] m = parse(llvm, arena, "times" + k + ".ll", "define i64 @times" + k
                        + "(i64 %x) {\nentry:\n  %a = mul i64 %x, 1\n  %r = mul i64 %a, " + k + "\n  ret i64 %r\n}\n");
                machine.optimize("times" + k + ".ll", m[0], "default<O2>");
                byte[] object = machine.emit("times" + k + ".ll", m[0], null);
                disposeContext.invokeExact(m[1]);
                host.load("times" + k + ".o", MemorySegment.ofArray(object));
                long r = (long) host.downcall("times" + k, FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG))
                        .invokeExact(7L);
                assertEquals(7L * k, r, "module " + k + " on the same machine");
            }
            MemorySegment[] other = parse(llvm, arena, "arm.ll", "target triple = \"aarch64-unknown-linux-gnu\"\n"
                    + "define void @f() {\n  ret void\n}\n");
            JitLoadException wrongTriple = assertThrows(JitLoadException.class, () -> machine.emit("arm.ll", other[0], null));
            assertTrue(wrongTriple.getMessage().contains("aarch64-unknown-linux-gnu"), wrongTriple.getMessage());
            machine.close();
            machine.close();
            assertThrows(IllegalStateException.class, () -> machine.emit("arm.ll", other[0], null));
            disposeContext.invokeExact(other[1]);
        }
    }

    @Test
    void reportsLlvmsOwnErrors() throws Exception {
        LlvmCompiler llvm = compiler();
        JitLoadException parse = assertThrows(JitLoadException.class,
                () -> llvm.compile("broken.ll", "define i64 @f( {\n", LlvmCompiler.Options.DEFAULT));
        assertTrue(parse.getMessage().startsWith("broken.ll: LLVM could not parse the IR: "), parse.getMessage());
        assertTrue(parse.getMessage().contains("error"), parse.getMessage());
        JitLoadException pass = assertThrows(JitLoadException.class, () -> llvm.compile("ok.ll",
                "define void @f() {\n  ret void\n}\n", LlvmCompiler.Options.DEFAULT.withPasses("no-such-pass")));
        assertTrue(pass.getMessage().contains("pass pipeline 'no-such-pass' failed"), pass.getMessage());
    }

    @Test
    void anOptimizationLevelOutsideZeroToThreeIsRefusedBeforeLlvmSeesIt() {
        for (int level : new int[] {-1, 4, Integer.MIN_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new LlvmCompiler.Options(level, true, null), "level " + level);
            assertTrue(e.getMessage().contains(Integer.toString(level)), e.getMessage());
        }
        for (int level = 0; level <= 3; level++) {
            assertEquals(level, new LlvmCompiler.Options(level, false, "").withPasses("default<O1>").optLevel());
        }
    }

    @Test
    void aMissingLibrarySaysHowToInstallIt() {
        LlvmUnavailableException e = assertThrows(LlvmUnavailableException.class,
                () -> LlvmCompiler.open(Path.of("/nonexistent/libLLVM.so.1")));
        assertTrue(e.getMessage().contains("apt-get install libllvm19"), e.getMessage());
    }
}
