package dev.safepointkit.stress.roots;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.roots.JitStackWalker;
import dev.safepointkit.roots.RootRelocator;
import dev.safepointkit.roots.SavedRegisters;
import dev.safepointkit.roots.StackWalkException;
import dev.safepointkit.roots.ThreadStack;
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
 * Walking and scanning a real JIT stack: fixtures/jit/x86_64/deep.o recursed {@code depth} + 1
 * frames deep below its entry frame, four roots in each of those depth + 2 frames. At the bottom, the poll copies the stopped
 * stack, byte for byte, into memory the benchmark keeps; each operation walks that copy with the
 * code still loaded and registered, exactly as it would walk the live stack (every slot and frame
 * is SP-relative). {@code scan} reads every root slot; {@code relocate} rewrites every slot
 * through {@link RootRelocator} (identity move, so the copy stays valid).
 * Per frame = score / (depth + 2); per root = score / (4 * (depth + 2)).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 10, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class StackWalkBenchmark {

    @Param("10000")
    public int depth;

    @Param("fixtures/jit/x86_64/deep.o")
    public String object;

    private static long entrySlot;
    private static MemorySegment captured;

    private JitHost host;
    private Arena arena;
    private ThreadStack stack;
    private JitStackWalker walker;
    private DeepStack.RootReader scan;
    private RootRelocator relocator;

    static void recordEntry(MemorySegment slot) {
        entrySlot = slot.address();
    }

    static void poll(MemorySegment slot) {
        long low = slot.address() - 8;
        long size = entrySlot + 8 - low;
        captured = Arena.global().allocate(size, 16);
        MemorySegment.copy(MemorySegment.ofAddress(low).reinterpret(size), 0, captured, 0, size);
    }

    @Setup(Level.Trial)
    public void setUp() throws Throwable {
        SafepointRegistry registry = new SafepointRegistry();
        host = new JitHost();
        arena = Arena.ofShared();
        host.addListener(new RegistryListener(registry));
        MethodHandles.Lookup lookup = MethodHandles.lookup();
        MethodType slotType = MethodType.methodType(void.class, MemorySegment.class);
        host.defineUpcall("record_entry", lookup.findStatic(StackWalkBenchmark.class, "recordEntry", slotType),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
        host.defineUpcall("deep_poll_java", lookup.findStatic(StackWalkBenchmark.class, "poll", slotType),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
        host.load("deep.o", MemorySegment.ofArray(Files.readAllBytes(Path.of(object))));
        DeepStack.recurse(host, depth, arena);
        // The copy starts at the poll function's saved RBP, one word below the return-address slot.
        stack = new ThreadStack(captured, captured.address() + 8, captured.address() + captured.byteSize(), SavedRegisters.none());
        walker = new JitStackWalker(registry);
        scan = new DeepStack.RootReader(captured);
        relocator = new RootRelocator(old -> old);
        int frames = walker.walk(stack, scan);
        if (frames != depth + 2 || scan.roots != 4L * (depth + 2)) {
            throw new IllegalStateException(frames + " frames, " + scan.roots + " roots");
        }
    }

    @Benchmark
    public long scan() throws StackWalkException {
        walker.walk(stack, scan);
        return scan.sum;
    }

    @Benchmark
    public int relocate() throws StackWalkException {
        return walker.walk(stack, relocator);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        host.close();
        arena.close();
    }
}
