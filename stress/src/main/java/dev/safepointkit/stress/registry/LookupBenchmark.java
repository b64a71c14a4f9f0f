package dev.safepointkit.stress.registry;

import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.StackMapSection;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.jctools.maps.NonBlockingHashMapLong;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Lookup of a safepoint by return address: the registry against {@code ConcurrentHashMap<Long, …>}
 * and JCTools' {@code NonBlockingHashMapLong}, holding the same safepoints, in the same run.
 * {@code alone}: one thread looking up. {@code withWriter}: one thread looking up while another
 * loads and unloads an object of 1,000 safepoints in a loop (registry: register + unregister;
 * maps: 1,000 puts + 1,000 removes); {@code writerAlone}: that writer with no reader, the
 * registration cost against the maps' puts without a second thread sharing the cores. Keys cycle through 1,024 random ones, so the hot part of
 * each structure stays in cache, as it does for a stack walker revisiting the same code.
 */
@State(Scope.Group)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
public class LookupBenchmark {
    @Param({"registry", "chm", "nbhml"})
    public String impl;

    @Param({"1000", "100000", "1000000"})
    public int safepoints;

    @Param({"true", "false"})
    public boolean hit;

    private SafepointRegistry registry;
    private ConcurrentHashMap<Long, LookupWorkload.FrameInfo> chm;
    private NonBlockingHashMapLong<LookupWorkload.FrameInfo> nbhml;
    private long[] keys;
    /** impl as an int, so the per-operation dispatch costs the same for every implementation. */
    private int kind;
    private int writerObject;
    private StackMapSection writerSection;

    @Setup(Level.Trial)
    public void build() {
        int objects = LookupWorkload.objectsFor(safepoints);
        switch (impl) {
            case "registry" -> registry = LookupWorkload.registry(objects);
            case "chm" -> chm = LookupWorkload.chm(objects);
            case "nbhml" -> nbhml = LookupWorkload.nbhml(objects);
            default -> throw new IllegalArgumentException(impl);
        }
        kind = switch (impl) {
            case "registry" -> 0;
            case "chm" -> 1;
            default -> 2;
        };
        keys = LookupWorkload.keys(objects, 1024, hit, 42);
        writerObject = objects + 1;
        writerSection = LookupWorkload.section(writerObject);
    }

    /** Per reader thread: its cursor and its place in the keys. */
    @State(Scope.Thread)
    public static class Reader {
        final Frame frame = new Frame();
        int next;
    }

    private long lookup(Reader r) {
        long key = keys[r.next++ & 1023];
        return switch (kind) {
            case 0 -> LookupWorkload.frameSize(registry, r.frame, key);
            case 1 -> {
                LookupWorkload.FrameInfo f = chm.get(key);
                yield f == null ? -1 : f.frameSize();
            }
            default -> {
                LookupWorkload.FrameInfo f = nbhml.get(key);
                yield f == null ? -1 : f.frameSize();
            }
        };
    }

    @Benchmark
    @Group("alone")
    public long lookupAlone(Reader r) {
        return lookup(r);
    }

    @Benchmark
    @Group("withWriter")
    @GroupThreads(1)
    public long lookupWithWriter(Reader r) {
        return lookup(r);
    }

    @Benchmark
    @Group("writerAlone")
    public void loadAndUnloadAlone() {
        loadAndUnload();
    }

    @Benchmark
    @Group("withWriter")
    @GroupThreads(1)
    public void loadAndUnload() {
        switch (kind) {
            case 0 -> {
                LookupWorkload.register(registry, writerObject, writerSection);
                registry.unregister(writerObject);
            }
            case 1 -> {
                LookupWorkload.put(chm, writerObject);
                LookupWorkload.remove(chm, writerObject);
            }
            default -> {
                LookupWorkload.put(nbhml, writerObject);
                LookupWorkload.remove(nbhml, writerObject);
            }
        }
    }
}
