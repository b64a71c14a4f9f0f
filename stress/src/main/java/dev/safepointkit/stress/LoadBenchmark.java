package dev.safepointkit.stress;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.JitObject;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Load + link + publish time of one object in the JIT host: ELF parse, mmap, copy, symbol
 * resolution, relocation, mprotect, stack map parse, and the events (no listeners attached).
 * Unloading happens outside the measured time.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 10, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class LoadBenchmark {

    /** An x86-64 relocatable object; undefined symbols it may call: sink (defined here as a no-op). */
    @Param("fixtures/jit/x86_64/math.o")
    public String object;

    private JitHost host;
    private Arena arena;
    private MemorySegment bytes;
    private JitObject loaded;

    public static void sink(MemorySegment p, long v) {
    }

    @Setup(Level.Trial)
    public void setUp() throws IOException, ReflectiveOperationException, JitLoadException {
        host = new JitHost();
        arena = Arena.ofShared();
        bytes = MemorySegment.ofArray(Files.readAllBytes(Path.of(object)));
        host.defineUpcall("sink", MethodHandles.lookup().findStatic(LoadBenchmark.class, "sink",
                MethodType.methodType(void.class, MemorySegment.class, long.class)),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG), arena);
    }

    @Benchmark
    public JitObject load() throws JitLoadException {
        loaded = host.load(object, bytes);
        return loaded;
    }

    @TearDown(Level.Invocation)
    public void unload() throws JitLoadException {
        if (loaded != null) {
            host.unload(loaded, true);
            loaded = null;
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        host.close();
        arena.close();
    }
}
