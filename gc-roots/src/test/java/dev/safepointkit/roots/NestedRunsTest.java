package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Runs of JIT frames inside each other (JIT → Java → JIT, JIT → C → JIT) and a thread blocked in
 * native code, on real LLVM-compiled code (fixtures/jit/src/nested.ll). Every collection moves
 * every object a root points to and fills the old copy with poison, so a root of any run that a
 * walk missed makes the JIT code read poison and its result comes out wrong.
 */
class NestedRunsTest {
    private static final long POISON = 0xDEAD_BEEF_DEAD_BEEFL;

    /** The test running now: the upcalls are static. */
    static NestedRunsTest current;

    private Arena arena;
    private JitHost host;
    private SafepointRegistry registry;
    private SafepointCoordinator coordinator;
    private Mutator mutator;
    private MemorySegment heap;
    private long bump;
    private final List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
    private final AtomicInteger collections = new AtomicInteger();
    private final AtomicInteger mostRuns = new AtomicInteger();
    private MethodHandle nest;
    private CountDownLatch exited = new CountDownLatch(1);
    /** The calling thread's mutator, for java_nest. */
    static final ThreadLocal<Mutator> MUTATOR = new ThreadLocal<>();
    /** When set, java_nest at depth 0 sleeps this timespec in native code instead of nesting. */
    private volatile MemorySegment sleepAtBottom;
    private MethodHandle sleepThenRead;

    @BeforeEach
    void setUp() throws Throwable {
        current = this;
        arena = Arena.ofShared();
        heap = arena.allocate(1 << 20, 16);
        host = new JitHost();
        registry = new SafepointRegistry();
        host.addListener(new RegistryListener(registry));
        coordinator = new SafepointCoordinator(0);
        host.defineUpcall("spk_poll", coordinator.pollUpcall(failures::add), SafepointCoordinator.SLOT_UPCALL, arena);
        host.defineUpcall("spk_exit", MethodHandles.lookup().findStatic(NestedRunsTest.class, "exit",
                MethodType.methodType(void.class, MemorySegment.class, MemorySegment.class)), SafepointCoordinator.SLOT_UPCALL, arena);
        host.defineUpcall("spk_return", coordinator.returnUpcall(failures::add), SafepointCoordinator.CONTEXT_UPCALL, arena);
        host.defineUpcall("spk_native_enter", coordinator.nativeEntryUpcall(failures::add), SafepointCoordinator.SLOT_UPCALL, arena);
        host.defineUpcall("spk_native_leave", coordinator.nativeLeaveUpcall(failures::add), SafepointCoordinator.CONTEXT_UPCALL, arena);
        host.defineUpcall("java_nest", MethodHandles.lookup().findStatic(NestedRunsTest.class, "javaNest",
                MethodType.methodType(long.class, MemorySegment.class, long.class)),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG), arena);
        host.load("nested.o", MemorySegment.ofArray(Files.readAllBytes(
                Fixtures.projectRoot().resolve("fixtures/jit/x86_64/nested.o"))));
        nest = host.downcall("nest", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                ValueLayout.JAVA_LONG));
        sleepThenRead = host.downcall("sleep_then_read", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        mutator = coordinator.attach();
        MUTATOR.set(mutator);
    }

    @AfterEach
    void tearDown() {
        coordinator.collectAtEveryPoll(null);
        mutator.close();
        host.close();
        arena.close();
        current = null;
    }

    /** The exit upcall, counted so a test knows when the thread is in native code. */
    static void exit(MemorySegment context, MemorySegment slot) {
        try {
            current.coordinator.exit(context, slot.address());
            current.exited.countDown();
        } catch (Throwable t) {
            current.failures.add(t);
        }
    }

    /** java_nest(ctx, depth): Java enters JIT code again, with an object of its own. */
    static long javaNest(MemorySegment context, long depth) {
        NestedRunsTest t = current;
        Mutator m = MUTATOR.get();
        try (var scope = m.enter()) {
            if (depth == 0 && t.sleepAtBottom != null) {
                // The innermost run goes into native code through an exit of its own.
                return (long) t.sleepThenRead.invokeExact(context, t.object(valueAt(depth)), t.sleepAtBottom);
            }
            return (long) t.nest.invokeExact(context, t.object(valueAt(depth)), depth);
        } catch (Throwable e) {
            t.failures.add(e);
            return 0;
        }
    }

    static long valueAt(long depth) {
        return 1_000 + 37 * depth;
    }

    /** A new object {value}. */
    private synchronized MemorySegment object(long value) {
        MemorySegment o = heap.asSlice(bump, 8);
        bump += 8;
        o.set(ValueLayout.JAVA_LONG, 0, value);
        return o;
    }

    /**
     * The collection: copies every object a root points to, then fills every object allocated
     * before it, copied or not, with poison, as a semispace collector leaves its old space. A root
     * the walk missed still points there.
     */
    private WorldAction moveAndPoison() {
        JitStackWalker walker = new JitStackWalker(registry);
        return world -> {
            long oldSpace;
            synchronized (this) {
                oldSpace = bump;
            }
            Map<Long, Long> moved = new HashMap<>();
            RootRelocator relocator = new RootRelocator(old -> moved.computeIfAbsent(old, o -> {
                MemorySegment copy = object(MemorySegment.ofAddress(o).reinterpret(8).get(ValueLayout.JAVA_LONG, 0));
                return copy.address();
            }));
            world.walkAll(walker, relocator);
            for (long at = 0; at < oldSpace; at += 8) {
                heap.set(ValueLayout.JAVA_LONG, at, POISON);
            }
            for (ThreadStack stack : world.stacks()) {
                mostRuns.accumulateAndGet(stack.runs().size(), Math::max);
            }
            collections.incrementAndGet();
        };
    }

    private void rethrowFailures() throws Throwable {
        if (!failures.isEmpty()) {
            Throwable first = failures.getFirst();
            failures.stream().skip(1).forEach(first::addSuppressed);
            throw first;
        }
    }

    @Test
    void javaUpcallsThatEnterJitCodeAgainThreeDeepHaveEveryRunsRootsRelocated() throws Throwable {
        coordinator.collectAtEveryPoll(moveAndPoison());
        long result;
        try (var scope = mutator.enter()) {
            result = (long) nest.invokeExact(mutator.context(), object(valueAt(3)), 3L);
        }
        coordinator.collectAtEveryPoll(null);
        rethrowFailures();
        assertEquals(valueAt(0) + valueAt(1) + valueAt(2) + valueAt(3), result, "every level read its own object after moves");
        assertEquals(4, mostRuns.get(), "the innermost collection saw all four runs");
        assertTrue(collections.get() >= 4, "a collection at each level's poll: " + collections.get());
    }

    @Test
    void aCollectionInACallbackFromCRelocatesTheRootsOfTheRunThatCalledC() throws Throwable {
        MethodHandle sort = host.downcall("sort_keys", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        long[] keys = new Random(7).longs(40, -1_000_000, 1_000_000).toArray();
        MemorySegment native_ = arena.allocate(8L * keys.length, 8);
        MemorySegment.copy(keys, 0, native_, ValueLayout.JAVA_LONG, 0, keys.length);
        coordinator.collectAtEveryPoll(moveAndPoison());
        long result;
        try (var scope = mutator.enter()) {
            result = (long) sort.invokeExact(mutator.context(), object(77), native_, (long) keys.length);
        }
        coordinator.collectAtEveryPoll(null);
        rethrowFailures();
        Arrays.sort(keys);
        assertEquals(77 * 1000 + keys[0], result);
        assertTrue(Arrays.equals(keys, native_.toArray(ValueLayout.JAVA_LONG)), "qsort_r sorted with the JIT comparator");
        assertEquals(2, mostRuns.get(), "the comparator's run and the run that called qsort_r");
        assertTrue(collections.get() >= keys.length, "a collection in every comparison: " + collections.get());
    }

    @Test
    void aThreadBlockedInNativeCodeDoesNotHoldUpAStopAndWaitsForItsEndOnReturn() throws Throwable {
        MethodHandle sleep = host.downcall("sleep_then_read", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        MemorySegment obj = object(4242);
        MemorySegment timespec = arena.allocate(16, 8);
        timespec.set(ValueLayout.JAVA_LONG, 0, 0);
        timespec.set(ValueLayout.JAVA_LONG, 8, 900_000_000L);  // 0.9 s: time enough for the stop to begin
        CompletableFuture<Long> read = new CompletableFuture<>();
        // Whatever fails on the sleeper, attaching and detaching included, goes to failures, which
        // this thread rethrows after joining it.
        Thread sleeper = Thread.ofPlatform().name("sleeper").start(() -> {
            try (Mutator m = coordinator.attach()) {
                try (var scope = m.enter()) {
                    read.complete((long) sleep.invokeExact(m.context(), obj, timespec));
                }
            } catch (Throwable t) {
                failures.add(t);
                read.completeExceptionally(t);
            }
        });
        assertTrue(exited.await(10, TimeUnit.SECONDS), () -> "the sleeper reached its native call; failures: " + failures);
        List<String> seen = new ArrayList<>();
        WorldAction move = moveAndPoison();
        coordinator.stopTimeout(java.time.Duration.ofSeconds(5));
        coordinator.stopTheWorld(null, 0, world -> {
            seen.add("stopped with the sleeper still in nanosleep: " + !read.isDone());
            seen.add("stacks: " + world.stacks().size() + ", runs: " + world.stacks().getFirst().runs().size());
            move.run(world);
            try {
                Thread.sleep(1_500);  // the sleep ends meanwhile: the return must wait for the stop to end
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
            // The action holds the coordinator's lock, so this holds even for a return that does
            // not wait for the stop (it blocks on the lock instead): the return's own wait is
            // checked, with the lock free, by SafepointCoordinatorTest's
            // aReturnFromAnExitWaitsForTheStopToEndWhileTheStopStillWaitsForItsMutators.
            seen.add("returned during the stop: " + read.isDone());
        });
        assertEquals(4242, (long) read.get(10, TimeUnit.SECONDS), "the sleeper read its moved object");
        sleeper.join();
        rethrowFailures();
        assertEquals(List.of("stopped with the sleeper still in nanosleep: true", "stacks: 1, runs: 1",
                "returned during the stop: false"), seen);
        assertEquals(1, collections.get());
        assertEquals(POISON, obj.get(ValueLayout.JAVA_LONG, 0), "the object moved and its old copy is poison");
    }

    @Test
    void aThreadInNativeCodeTwoExitsDeepHasEveryRunWalked() throws Throwable {
        MemorySegment timespec = arena.allocate(16, 8);
        timespec.set(ValueLayout.JAVA_LONG, 0, 1);  // 1 s
        sleepAtBottom = timespec;
        exited = new CountDownLatch(2);  // call_java's exit, then call_sleep's
        CompletableFuture<Long> result = new CompletableFuture<>();
        Thread sleeper = Thread.ofPlatform().name("nested-sleeper").start(() -> {
            try (Mutator m = coordinator.attach()) {
                MUTATOR.set(m);
                try (var scope = m.enter()) {
                    result.complete((long) nest.invokeExact(m.context(), object(valueAt(1)), 1L));
                }
            } catch (Throwable t) {
                failures.add(t);
                result.completeExceptionally(t);
            }
        });
        assertTrue(exited.await(10, TimeUnit.SECONDS), () -> "the sleeper reached nanosleep; failures: " + failures);
        coordinator.stopTimeout(java.time.Duration.ofSeconds(5));
        AtomicInteger runs = new AtomicInteger();
        WorldAction move = moveAndPoison();
        coordinator.stopTheWorld(null, 0, world -> {
            runs.set(world.stacks().size() == 1 ? world.stacks().getFirst().runs().size() : -world.stacks().size());
            move.run(world);
        });
        assertEquals(valueAt(1) + valueAt(0), (long) result.get(10, TimeUnit.SECONDS), "both runs read their moved objects");
        sleeper.join();
        rethrowFailures();
        assertEquals(2, runs.get(), "the sleeping run and the run that called Java");
    }
}
