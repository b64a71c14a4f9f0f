package dev.safepointkit.stress;

import dev.safepointkit.stackmap.StackMapFormatException;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.testing.StackMapWalker;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
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
 * Parsing a large {@code .llvm_stackmaps} section (real llc output, made by
 * scripts/gen-large-stackmap.sh): validation alone, and validation plus reading every field of
 * every function, constant, record, location and live-out, through the allocating views, through
 * reused cursors and through reused location and live-out arrays (both of which -prof gc shows
 * allocating only the parse's own index). The auxiliary counters give the
 * throughput in megabytes of section and in call-site records per second.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 10, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ParseBenchmark {

    /** The raw section bytes of an x86-64 object, as written by llvm-objcopy --dump-section. */
    @Param("target/bench/large.llvm_stackmaps")
    public String section;

    private Arena arena;
    private MemorySegment bytes;
    private long records;

    /** Per-iteration counts of what was parsed; JMH reports them per second. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Throughput {
        public double megabytes;
        public long records;

        @Setup(Level.Iteration)
        public void reset() {
            megabytes = 0;
            records = 0;
        }
    }

    @Setup
    public void map() throws IOException {
        // The benchmark's arena owns the mapping until tear-down.
        arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(Path.of(section), StandardOpenOption.READ)) {
            bytes = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
        }
        records = StackMapSection.parse(bytes, ByteOrder.LITTLE_ENDIAN).recordCount();
        if (records < 100_000) {
            throw new IllegalStateException(section + " has only " + records + " records; the benchmark wants 100,000 or more");
        }
    }

    @TearDown
    public void unmap() {
        arena.close();
    }

    @Benchmark
    public StackMapSection validate(Throughput t) throws StackMapFormatException {
        StackMapSection parsed = StackMapSection.parse(bytes, ByteOrder.LITTLE_ENDIAN);
        count(t);
        return parsed;
    }

    @Benchmark
    public long validateAndReadEveryField(Throughput t) throws StackMapFormatException {
        long sum = StackMapWalker.sumEverything(StackMapSection.parse(bytes, ByteOrder.LITTLE_ENDIAN));
        count(t);
        return sum;
    }

    /** Per-thread cursors, reused across invocations as a caller keeps them. */
    @State(Scope.Thread)
    public static class Cursors {
        public final StackMapWalker.Cursors cursors = new StackMapWalker.Cursors();
    }

    @Benchmark
    public long validateAndReadEveryFieldThroughCursors(Throughput t, Cursors c) throws StackMapFormatException {
        long sum = StackMapWalker.sumEverything(StackMapSection.parse(bytes, ByteOrder.LITTLE_ENDIAN), c.cursors);
        count(t);
        return sum;
    }

    @Benchmark
    public long validateAndReadEveryFieldThroughArrays(Throughput t, Cursors c) throws StackMapFormatException {
        long sum = StackMapWalker.sumEverythingThroughArrays(StackMapSection.parse(bytes, ByteOrder.LITTLE_ENDIAN), c.cursors);
        count(t);
        return sum;
    }

    private void count(Throughput t) {
        t.megabytes += bytes.byteSize() / 1e6;
        t.records += records;
    }
}
