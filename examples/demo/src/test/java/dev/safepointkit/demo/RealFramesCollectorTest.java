package dev.safepointkit.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.roots.Mutator;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The copying collector on frames of real LLVM-compiled code with hand-written statepoints
 * (examples/demo/src/test/llvm/frames.ll): every collection moves every live object and poisons
 * the space it leaves, so each program's result is right only if every root of every kind was
 * found and fixed.
 */
class RealFramesCollectorTest {
    private static final FunctionDescriptor TWO_LONGS = FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.ADDRESS, ValueLayout.JAVA_LONG);

    private DemoRuntime runtime;

    @BeforeEach
    void load() throws Exception {
        runtime = new DemoRuntime(1 << 20, 0);
        runtime.load("frames.o", Files.readAllBytes(Fixtures.projectRoot().resolve("fixtures/demo/x86_64/frames.o")));
    }

    @AfterEach
    void close() {
        runtime.close();
    }

    private long call(String function, long argument) throws Throwable {
        MethodHandle h = runtime.downcall(function, TWO_LONGS);
        Mutator m = runtime.attach();
        try (var scope = m.enter()) {
            return (long) h.invokeExact(m.context(), argument);
        } finally {
            runtime.detach(m);
        }
    }

    @Test
    void aSpilledBaseSurvivesACollection() throws Throwable {
        assertEquals(4242, call("survives_collect", 4242));
        assertEquals(1, runtime.heap().collections());
        assertEquals(1, runtime.heap().framesWalked());
        assertEquals(1, runtime.heap().rootsVisited());
    }

    @Test
    void aCollectorThatMissesAStackRootIsCaughtByThePoison() throws Throwable {
        runtime.heap().ignoreStackRoots = true;
        assertEquals(-1, call("survives_collect", 4242), "the stale object's header reads poison");
    }

    @Test
    void derivedPointersWalkingAnArrayAreRebasedAtEveryCollection() throws Throwable {
        int n = 200;
        long expected = 3L * n * (n - 1) / 2 + n;
        assertEquals(expected, call("sum_array", n));
        assertEquals(n, runtime.heap().collections(), "one collection per element");
        assertEquals(2L * n, runtime.heap().rootsVisited(), "the array and its element pointer, each time");
    }

    @Test
    void gcLiveAllocasAreUpdatedInPlace() throws Throwable {
        assertEquals(77, call("alloca_roots", 77));
        assertEquals(1, runtime.heap().collections());
        assertEquals(2, runtime.heap().rootsVisited(), "two alloca slots, one object");
    }

    @Test
    void dynamicFramesAreWalkedThroughTheFramePointer() throws Throwable {
        MethodHandle h = runtime.downcall("dynamic_entry", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        Mutator m = runtime.attach();
        long result;
        try (var scope = m.enter()) {
            result = (long) h.invokeExact(m.context(), 37L, 1000L);
        } finally {
            runtime.detach(m);
        }
        assertEquals(4 * 1000 + 1, result);
        // dyn_outer's own collection (dyn_outer, dynamic_entry) and fp_inner's (fp_inner, dyn_outer, dynamic_entry).
        assertEquals(2, runtime.heap().collections());
        assertEquals(5, runtime.heap().framesWalked());
    }

    @Test
    void fourMutatorsCollectingWhileTheOthersRunAndCodeIsUnloaded() throws Throwable {
        int threads = 4;
        int n = 150;
        MethodHandle sum = runtime.downcall("sum_array", TWO_LONGS);
        MethodHandle alloca = runtime.downcall("alloca_roots", TWO_LONGS);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        // Meanwhile another thread loads and unloads other code with safepoints of its own
        // (binary-trees): the registry changes under the walks.
        byte[] other = DemoRuntime.bundled("binarytrees.o");
        AtomicBoolean done = new AtomicBoolean();
        AtomicLong churn = new AtomicLong();
        Thread churner = Thread.ofPlatform().start(() -> {
            try {
                while (!done.get()) {
                    runtime.unload(runtime.load("binarytrees.o", other));
                    churn.incrementAndGet();
                }
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
        });
        List<Thread> workers = new ArrayList<>();
        long[] results = new long[threads * 2];
        for (int t = 0; t < threads; t++) {
            int id = t;
            // Whatever fails on a worker, attaching and detaching included, goes to failure.
            workers.add(Thread.ofPlatform().start(() -> {
                Mutator m = null;
                try {
                    m = runtime.attach();
                    for (int round = 0; round < 3; round++) {
                        try (var scope = m.enter()) {
                            results[2 * id] = (long) sum.invokeExact(m.context(), (long) n + id);
                            results[2 * id + 1] = (long) alloca.invokeExact(m.context(), 1000L + id);
                        }
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                } finally {
                    if (m != null) {
                        try {
                            runtime.detach(m);
                        } catch (Throwable e) {
                            failure.compareAndSet(null, e);
                        }
                    }
                }
            }));
        }
        for (Thread w : workers) {
            w.join();
        }
        done.set(true);
        churner.join();
        if (failure.get() != null) {
            throw failure.get();
        }
        assertTrue(churn.get() > 0, "code was loaded and unloaded during the run");
        for (int t = 0; t < threads; t++) {
            long len = n + t;
            assertEquals(3L * len * (len - 1) / 2 + len, results[2 * t], "thread " + t);
            assertEquals(1000L + t, results[2 * t + 1], "thread " + t);
        }
        long requested = 0;
        for (int t = 0; t < threads; t++) {
            requested += 3L * (n + t + 1);
        }
        assertEquals(requested, runtime.heap().collections(), "every requested collection ran once");
        assertTrue(runtime.heap().framesWalked() > runtime.heap().collections(),
                "collections also walked other threads' stacks: " + runtime.heap().framesWalked());
        assertEquals(List.of(), runtime.failures());
    }
}
