package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.safepointkit.stackmap.testing.LlvmTools;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The C++ runtime of the unwinding fixtures (resources unwind/unwind_runtime.cpp), built with the
 * system g++ into a shared library once per JVM and loaded with {@link System#load}: then the
 * host's process lookup finds its functions, and through its dependencies libstdc++'s
 * personality, typeinfos and {@code __cxa_*}. Any thread, after {@link #load}.
 */
final class UnwindRuntime {
    static final FunctionDescriptor LONG_LONG = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);
    private static Path library;

    private UnwindRuntime() {
    }

    /** Builds the library (first call only) and returns its path; skips or fails without g++. */
    static synchronized Path build() {
        if (library != null) {
            return library;
        }
        Path gxx = LlvmTools.requireProgram("g++", "apt-get install g++");
        try {
            Path dir = Files.createTempDirectory("safepointkit-unwind");
            dir.toFile().deleteOnExit();
            Path source = dir.resolve("unwind_runtime.cpp");
            try (InputStream in = UnwindRuntime.class.getResourceAsStream("unwind/unwind_runtime.cpp")) {
                Files.copy(in, source, StandardCopyOption.REPLACE_EXISTING);
            }
            Path out = dir.resolve("libunwind_runtime.so");
            Process p = new ProcessBuilder(gxx.toString(), "-shared", "-fPIC", "-O2", "-o", out.toString(), source.toString())
                    .redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes());
            assertEquals(0, p.waitFor(), "g++ failed: " + log);
            source.toFile().deleteOnExit();
            out.toFile().deleteOnExit();
            library = out;
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Builds and loads the library into this JVM. */
    static Path load() {
        Path lib = build();
        System.load(lib.toString());
        return lib;
    }

    /** A downcall to a function of the loaded library. */
    static MethodHandle function(String name, FunctionDescriptor descriptor) {
        MemorySegment address = SymbolLookup.loaderLookup().findOrThrow(name);
        return Linker.nativeLinker().downcallHandle(address, descriptor);
    }

    /** The frames the last rt_backtrace recorded, innermost first. */
    static long[] lastBacktrace() throws Throwable {
        int count = (int) function("rt_frame_count", FunctionDescriptor.of(ValueLayout.JAVA_INT)).invokeExact();
        MethodHandle frame = function("rt_frame", FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        long[] frames = new long[count];
        for (int i = 0; i < count; i++) {
            frames[i] = ((MemorySegment) frame.invokeExact(i)).address();
        }
        return frames;
    }
}
