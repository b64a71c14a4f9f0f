package dev.safepointkit.cli;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.host.LlvmCompiler;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The program {@link GdbIT} runs under gdb: calls fib from math.o, unloads math.o, then loads
 * data.o and calls read_table, a function that only runs after the unload, where the test asks
 * gdb whether it still knows fib. With {@code llvm} as its first argument it opens libLLVM first,
 * so that libLLVM's own {@code __jit_debug_descriptor} is in the process too.
 */
public final class GdbProgram {
    private GdbProgram() {
    }

    /**
     * Runs the sequence above.
     *
     * @param args {@code [llvm] FIXTURE_DIR}
     * @throws Throwable any failure, which ends the JVM with a non-zero status
     */
    public static void main(String[] args) throws Throwable {
        boolean llvm = args[0].equals("llvm");
        Path fixtures = Path.of(args[args.length - 1]);
        if (llvm) {
            // Loads libLLVM.so.19.1 into the process (and keeps it): its descriptor now exists.
            System.out.println("libLLVM " + LlvmCompiler.open().llvmVersion());
        }
        FunctionDescriptor longToLong = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);
        try (JitHost host = new JitHost()) {
            JitObject math = host.load("math.o", MemorySegment.ofArray(Files.readAllBytes(fixtures.resolve("math.o"))));
            System.out.println("fib(12) = " + (long) host.downcall("fib", longToLong).invokeExact(12L));
            host.unload(math, false);
            host.load("data.o", MemorySegment.ofArray(Files.readAllBytes(fixtures.resolve("data.o"))));
            System.out.println("read_table(1) = " + (long) host.downcall("read_table", longToLong).invokeExact(1L));
        }
    }
}
