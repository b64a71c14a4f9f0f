package dev.safepointkit.stress.registry;

import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.StackMapSection;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.jctools.maps.NonBlockingHashMapLong;

/**
 * Lookups in the registry against NonBlockingHashMapLong by the reader thread's CPU time rather
 * than wall time, for a machine shared with other work: time the reader spends descheduled does
 * not count, and the two structures alternate in short bursts in one JVM, so both see the same
 * load. Hits among 1,024 random return addresses of {@code SAFEPOINTS} safepoints, as
 * {@link LookupBenchmark}; with {@code writer}, a second thread loads and unloads an object of
 * 1,000 safepoints in a loop into whichever structure is being read, as its {@code withWriter}
 * group does. Prints per structure the median, quartiles and range of the bursts' CPU
 * nanoseconds per lookup, and the writer's loads per second. With {@code writer-alone}, no reader:
 * the main thread loads and unloads that object, 200 times a burst, and the CPU microseconds per
 * load and unload are printed instead.
 *
 * <p>{@code java -cp stress/target/benchmarks.jar dev.safepointkit.stress.registry.LookupCpuTime alone|writer|writer-alone [SAFEPOINTS] [BURSTS]}
 *
 * <p>The main thread reads; the writer thread only writes; the burst's structure is handed over
 * through a volatile field. A writer failure is rethrown on the main thread.
 */
public final class LookupCpuTime {
    private static final int LOOKUPS_PER_BURST = 2_000_000;
    private static final int WARM_UP_BURSTS = 10;

    private final SafepointRegistry registry;
    private final NonBlockingHashMapLong<LookupWorkload.FrameInfo> nbhml;
    private final long[] keys;
    private final Frame frame = new Frame();
    /** 0 registry, 1 NBHML, -1 idle: what the writer writes to; written by the reader. */
    private volatile int written = -1;
    private volatile boolean stop;
    private final AtomicLong[] writes = {new AtomicLong(), new AtomicLong()};

    private LookupCpuTime(int objects) {
        registry = LookupWorkload.registry(objects);
        nbhml = LookupWorkload.nbhml(objects);
        keys = LookupWorkload.keys(objects, 1024, true, 42);
    }

    private long readRegistry(int n) {
        long sum = 0;
        for (int i = 0; i < n; i++) {
            sum += LookupWorkload.frameSize(registry, frame, keys[i & 1023]);
        }
        return sum;
    }

    private long readNbhml(int n) {
        long sum = 0;
        for (int i = 0; i < n; i++) {
            LookupWorkload.FrameInfo f = nbhml.get(keys[i & 1023]);
            sum += f == null ? -1 : f.frameSize();
        }
        return sum;
    }

    private void write(int object, StackMapSection section) {
        while (!stop) {
            int target = written;
            if (target == 0) {
                LookupWorkload.register(registry, object, section);
                registry.unregister(object);
            } else if (target == 1) {
                LookupWorkload.put(nbhml, object);
                LookupWorkload.remove(nbhml, object);
            } else {
                Thread.onSpinWait();
                continue;
            }
            writes[target].incrementAndGet();
        }
    }

    public static void main(String[] args) throws Throwable {
        String mode = args.length > 0 ? args[0] : "";
        if (!mode.equals("alone") && !mode.equals("writer") && !mode.equals("writer-alone")) {
            throw new IllegalArgumentException("usage: LookupCpuTime alone|writer|writer-alone [SAFEPOINTS] [BURSTS]");
        }
        boolean withWriter = mode.equals("writer");
        int safepoints = args.length > 1 ? Integer.parseInt(args[1]) : 1_000_000;
        int bursts = args.length > 2 ? Integer.parseInt(args[2]) : 20;
        int objects = LookupWorkload.objectsFor(safepoints);
        LookupCpuTime run = new LookupCpuTime(objects);
        StackMapSection section = LookupWorkload.section(objects + 1);
        if (mode.equals("writer-alone")) {
            run.writeAlone(objects + 1, section, bursts);
            return;
        }
        AtomicReference<Throwable> writerFailure = new AtomicReference<>();
        Thread writer = new Thread(() -> {
            try {
                run.write(objects + 1, section);
            } catch (Throwable t) {
                writerFailure.set(t);
            }
        }, "writer");
        writer.setDaemon(true);
        if (withWriter) {
            writer.start();
        }
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        double[][] cpu = new double[2][bursts];
        double[] writesPerSecond = new double[2];
        long sink = 0;
        for (int b = -WARM_UP_BURSTS; b < bursts; b++) {
            for (int impl = 0; impl < 2; impl++) {
                run.written = withWriter ? impl : -1;
                // A tenth of a burst first, so the writer is running on this structure when timing starts.
                sink += impl == 0 ? run.readRegistry(LOOKUPS_PER_BURST / 10) : run.readNbhml(LOOKUPS_PER_BURST / 10);
                long writesBefore = run.writes[impl].get();
                long cpuStart = mx.getCurrentThreadCpuTime();
                long wallStart = System.nanoTime();
                sink += impl == 0 ? run.readRegistry(LOOKUPS_PER_BURST) : run.readNbhml(LOOKUPS_PER_BURST);
                long cpuEnd = mx.getCurrentThreadCpuTime();
                long wallEnd = System.nanoTime();
                if (b >= 0) {
                    cpu[impl][b] = (double) (cpuEnd - cpuStart) / LOOKUPS_PER_BURST;
                    writesPerSecond[impl] += (run.writes[impl].get() - writesBefore) * 1e9 / (wallEnd - wallStart) / bursts;
                }
            }
        }
        run.stop = true;
        writer.join(60_000);
        if (writerFailure.get() != null) {
            throw writerFailure.get();
        }
        for (int impl = 0; impl < 2; impl++) {
            double[] x = cpu[impl].clone();
            Arrays.sort(x);
            System.out.printf("%s %-8s CPU ns per lookup: median %.2f, quartiles %.2f to %.2f, range %.2f to %.2f; writer %.0f loads/s%n",
                    args[0], impl == 0 ? "registry" : "nbhml", x[bursts / 2], x[bursts / 4], x[3 * bursts / 4], x[0],
                    x[bursts - 1], writesPerSecond[impl]);
        }
        System.out.println("(checksum " + (sink & 0xF) + ")");
    }

    private void writeAlone(int object, StackMapSection section, int bursts) {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        int perBurst = 200;
        double[][] cpu = new double[2][bursts];
        for (int b = -WARM_UP_BURSTS / 2; b < bursts; b++) {
            for (int impl = 0; impl < 2; impl++) {
                long start = mx.getCurrentThreadCpuTime();
                for (int i = 0; i < perBurst; i++) {
                    if (impl == 0) {
                        LookupWorkload.register(registry, object, section);
                        registry.unregister(object);
                    } else {
                        LookupWorkload.put(nbhml, object);
                        LookupWorkload.remove(nbhml, object);
                    }
                }
                long end = mx.getCurrentThreadCpuTime();
                if (b >= 0) {
                    cpu[impl][b] = (end - start) / 1000.0 / perBurst;
                }
            }
        }
        for (int impl = 0; impl < 2; impl++) {
            double[] x = cpu[impl].clone();
            Arrays.sort(x);
            System.out.printf("writer-alone %-8s CPU us per load and unload: median %.1f, quartiles %.1f to %.1f, range %.1f to %.1f%n",
                    impl == 0 ? "registry" : "nbhml", x[bursts / 2], x[bursts / 4], x[3 * bursts / 4], x[0], x[bursts - 1]);
        }
    }
}
