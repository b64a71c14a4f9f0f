package dev.safepointkit.stress.patch;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.patch.CodePatcher;
import dev.safepointkit.patch.LazyCompiler;
import dev.safepointkit.patch.Sled;
import dev.safepointkit.roots.Mutator;
import dev.safepointkit.roots.SafepointCoordinator;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Mutator threads run {@code spin} (fixtures/patch/src/spin.ll): per iteration two calls of g
 * (one site with an aligned rel32, one without) and two patchpoint sleds (one whose imm64 is
 * 8-byte aligned, one not). Meanwhile the calling thread keeps patching: relink and unlink g,
 * rewrite each sled into a call, retarget it between two targets and back, restore its NOPs,
 * redefine g with a freshly loaded body (x*2 and x*3 in turn) and free the old ones at
 * safepoints. The native loop counts every result by kind, so after the run every one of them
 * can be checked against the allowed values.
 *
 * <p>{@code java ... dev.safepointkit.stress.patch.PatchStress [threads] [iterations per thread]}
 */
public final class PatchStress {
    /** Result kinds, as spin.ll counts them. */
    public static final int G_WRONG = 0;
    public static final int G_TIMES_2 = 1;
    public static final int G_TIMES_3 = 2;
    public static final int SLED_0 = 3;
    public static final int SLED_1 = 4;
    public static final int SLED_2 = 5;
    public static final int SLED_WRONG = 6;
    private static final long CHUNK = 50_000;

    /**
     * @param counts totals over all threads, indexed by the kinds above
     * @param gCalls calls of g through patched sites, as the code counted them (two per iteration
     *     when none is lost)
     * @param sledCalls sled executions, as the code counted them (two per iteration likewise)
     * @param freed old bodies freed, including at a last safepoint once every mutator is done
     */
    public record Result(long[] counts, long gCalls, long sledCalls, long rounds, long patches, long redefinitions,
            long freed, long lazyCompiles, List<Throwable> failures, long nanos) {

        public String summary() {
            return String.format("%,d calls of g (x2: %,d, x3: %,d, wrong: %,d), %,d sled runs (0: %,d, 1: %,d, 2: %,d,"
                    + " wrong: %,d); %,d patching rounds, %,d patches, %,d redefinitions, %,d objects freed, %,d lazy compiles,"
                    + " %d failures, %.2f s", gCalls, counts[G_TIMES_2], counts[G_TIMES_3], counts[G_WRONG], sledCalls,
                    counts[SLED_0], counts[SLED_1], counts[SLED_2], counts[SLED_WRONG], rounds, patches, redefinitions, freed,
                    lazyCompiles, failures.size(), nanos / 1e9);
        }
    }

    private PatchStress() {
    }

    public static void main(String[] args) throws Exception {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        long iterations = args.length > 1 ? Long.parseLong(args[1]) : 2_500_000;
        Result r = run(threads, iterations);
        System.out.println(r.summary());
        boolean ok = r.counts[G_WRONG] == 0 && r.counts[SLED_WRONG] == 0 && r.failures.isEmpty();
        System.exit(ok ? 0 : 1);
    }

    /** The project root: as Maven's tests set it, else the working directory (the bench scripts run there). */
    static Path fixtureRoot() {
        return Path.of(System.getProperty("safepointkit.root", "."));
    }

    /** fixtures/patch/x86_64/NAME.o. */
    static byte[] fixture(String name) throws java.io.IOException {
        return Files.readAllBytes(fixtureRoot().resolve(Path.of("fixtures/patch/x86_64", name + ".o")));
    }

    /**
     * spin.o with its runtime: spk_poll bound to {@code coordinator}, g declared with {@code g};
     * its upcall lives in {@code arena}.
     */
    static JitObject loadSpin(JitHost host, CodePatcher patcher, SafepointCoordinator coordinator, Arena arena,
            java.util.function.Consumer<Throwable> failures, LazyCompiler g) throws Exception {
        host.defineUpcall("spk_poll", coordinator.pollUpcall(failures),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS), arena);
        patcher.declare("g", g);
        return host.load("spin.o", MemorySegment.ofArray(fixture("spin")));
    }

    public static Result run(int threads, long iterationsPerThread) throws Exception {
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        AtomicInteger lazyCompiles = new AtomicInteger();
        byte[] v1 = fixture("g_v1");
        byte[] v2 = fixture("g_v2");
        SafepointCoordinator coordinator = new SafepointCoordinator(0);
        long start = System.nanoTime();
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared();
             CodePatcher patcher = new CodePatcher(host, coordinator, failures::add)) {
            JitObject spin = loadSpin(host, patcher, coordinator, arena, failures::add, name -> {
                lazyCompiles.incrementAndGet();
                return host.load("g_v1.o", MemorySegment.ofArray(v1));
            });
            MethodHandle spinFn = host.downcall("spin", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                    ValueLayout.ADDRESS));
            Sled unaligned = patcher.sled(spin, 77, 16);
            Sled aligned = patcher.sled(spin, 78, 16);
            long one = host.address("mark_one").orElseThrow();
            long two = host.address("mark_two").orElseThrow();

            List<MemorySegment> counts = new ArrayList<>();
            List<Thread> mutators = new ArrayList<>();
            AtomicInteger running = new AtomicInteger(threads);
            for (int t = 0; t < threads; t++) {
                MemorySegment c = arena.allocate(8 * 7, 8);
                counts.add(c);
                mutators.add(Thread.ofPlatform().name("spin-" + t).start(() -> {
                    try (Mutator m = coordinator.attach()) {
                        for (long done = 0; done < iterationsPerThread; done += CHUNK) {
                            try (var scope = m.enter()) {
                                spinFn.invokeExact(m.context(), Math.min(CHUNK, iterationsPerThread - done), c);
                            }
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    } finally {
                        running.decrementAndGet();
                    }
                }));
            }

            // g is compiled by its stub on a mutator's first call; a redefinition before that call would
            // install a body without any lazy compile, so patching starts only once the stub has compiled.
            while (lazyCompiles.get() == 0 && running.get() > 0 && failures.isEmpty()) {
                Thread.onSpinWait();
            }
            long rounds = 0;
            long redefinitions = 0;
            long freed = 0;
            while (running.get() > 0 && failures.isEmpty()) {
                patcher.relink("g");
                for (Sled s : List.of(unaligned, aligned)) {
                    patcher.callFromSled(s, one);
                }
                for (Sled s : List.of(unaligned, aligned)) {
                    patcher.retargetSled(s, two);
                }
                JitObject next = host.load(rounds % 2 == 0 ? "g_v2.o" : "g_v1.o",
                        MemorySegment.ofArray(rounds % 2 == 0 ? v2 : v1));
                patcher.redefine("g", next);
                redefinitions++;
                freed += patcher.safepoint();
                for (Sled s : List.of(unaligned, aligned)) {
                    patcher.retargetSled(s, one);
                    patcher.restoreSled(s);
                }
                patcher.unlink("g");
                freed += patcher.safepoint();
                rounds++;
            }
            for (Thread t : mutators) {
                t.join();
            }
            // No mutator runs any more: whatever is still retired must be freed now.
            freed += patcher.safepoint();
            long[] totals = new long[7];
            for (MemorySegment c : counts) {
                for (int k = 0; k < 7; k++) {
                    totals[k] += c.getAtIndex(ValueLayout.JAVA_LONG, k);
                }
            }
            long gCalls = totals[G_WRONG] + totals[G_TIMES_2] + totals[G_TIMES_3];
            long sledCalls = totals[SLED_0] + totals[SLED_1] + totals[SLED_2] + totals[SLED_WRONG];
            return new Result(totals, gCalls, sledCalls, rounds, patcher.patchCount(), redefinitions, freed,
                    lazyCompiles.get(), List.copyOf(failures), System.nanoTime() - start);
        }
    }
}
