package dev.safepointkit.compile;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.stackmap.testing.LlvmTools;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** Real IR for the pipeline's tests, and the calls that run it. */
final class PipelineFixtures {
    private PipelineFixtures() {}

    static LlvmCompiler llvm() {
        return LlvmTools.requireAvailable(LlvmCompiler::open);
    }

    static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    /** A runtime with a small function the optimizer inlines and a large one it calls. */
    static String runtime() {
        StringBuilder large = new StringBuilder("define i64 @rt_large(i64 %x) {\nentry:\n  %v0 = add i64 %x, 1\n");
        // Each step depends on the last and on the input: nothing folds, and ~400 instructions
        // are far above the inliner's threshold.
        for (int i = 1; i <= 200; i++) {
            large.append("  %m").append(i).append(" = mul i64 %v").append(i - 1).append(", ").append(2 * i + 1).append('\n');
            large.append("  %v").append(i).append(" = xor i64 %m").append(i).append(", %x\n");
        }
        large.append("  ret i64 %v200\n}\n");
        return """
                define i64 @rt_small(i64 %x) {
                entry:
                  %r = add i64 %x, 7
                  ret i64 %r
                }

                """ + large;
    }

    /** What rt_large computes, in Java. */
    static long rtLarge(long x) {
        long v = x + 1;
        for (int i = 1; i <= 200; i++) {
            v = (v * (2L * i + 1)) ^ x;
        }
        return v;
    }

    /**
     * Private data, a private and an internal function reached through a table of function
     * pointers, a linkonce_odr function, and state kept between calls.
     */
    static final String SPLIT = """
            @counter = private global i64 0
            @table = private constant [2 x ptr] [ptr @twice, ptr @square]

            define linkonce_odr i64 @helper(i64 %x) {
            entry:
              %r = add i64 %x, 1
              ret i64 %r
            }

            define private i64 @twice(i64 %x) {
            entry:
              %r = mul i64 %x, 2
              ret i64 %r
            }

            define internal i64 @square(i64 %x) {
            entry:
              %r = mul i64 %x, %x
              ret i64 %r
            }

            define i64 @bump(i64 %n) {
            entry:
              %old = load i64, ptr @counter
              %new = add i64 %old, %n
              store i64 %new, ptr @counter
              ret i64 %new
            }

            define i64 @dispatch(i64 %i, i64 %x) {
            entry:
              %slot = getelementptr [2 x ptr], ptr @table, i64 0, i64 %i
              %f = load ptr, ptr %slot
              %r = call i64 %f(i64 %x)
              %h = call i64 @helper(i64 %r)
              ret i64 %h
            }

            define i64 @entry(i64 %x) {
            entry:
              %b = call i64 @bump(i64 %x)
              %d0 = call i64 @dispatch(i64 0, i64 %x)
              %d1 = call i64 @dispatch(i64 1, i64 %x)
              %s = add i64 %b, %d0
              %t = mul i64 %s, 1000
              %u = add i64 %t, %d1
              ret i64 %u
            }
            """;

    /** A module of {@code scale(x) = x * factor}. */
    static String scale(long factor) {
        return "define i64 @scale(i64 %x) {\nentry:\n  %r = mul i64 %x, " + factor + "\n  ret i64 %r\n}\n";
    }

    /** A module of {@code shift(x) = x << 1}. */
    static final String SHIFT = """
            define i64 @shift(i64 %x) {
            entry:
              %r = shl i64 %x, 1
              ret i64 %r
            }
            """;

    /** Calls {@code name} with i64 arguments, returning its i64. */
    static long call(JitHost host, String name, long... args) throws Throwable {
        MemoryLayout[] params = new MemoryLayout[args.length];
        Arrays.fill(params, ValueLayout.JAVA_LONG);
        MethodHandle h = handle(host, name, args.length);
        return (long) h.invokeWithArguments(Arrays.stream(args).boxed().toArray());
    }

    static MethodHandle handle(JitHost host, String name, int arity) throws JitLoadException {
        MemoryLayout[] params = new MemoryLayout[arity];
        Arrays.fill(params, ValueLayout.JAVA_LONG);
        return host.downcall(name, FunctionDescriptor.of(ValueLayout.JAVA_LONG, params));
    }
}
