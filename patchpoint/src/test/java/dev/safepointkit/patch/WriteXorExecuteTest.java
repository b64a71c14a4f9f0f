package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.events.internal.Libc;
import dev.safepointkit.host.CallSite;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.roots.Mutator;
import dev.safepointkit.roots.SafepointCoordinator;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/**
 * W^X while patching: code is double mapped, so no mapping of the host or the patcher is ever
 * writable and executable, and the patch path makes no mprotect call. A second thread samples
 * /proc/self/maps the whole time a mutator calls through the sites being relinked, those written
 * while it runs and those written at a stop.
 */
class WriteXorExecuteTest {
    private static final FunctionDescriptor LONG_LONG = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);
    /** At least this many rounds of patches, and on until the sampler has read the maps this often. */
    private static final long ROUNDS = 3_000;
    private static final long SAMPLES = 300;

    /** [from, to) address ranges. */
    private record Range(long from, long to) {
        boolean overlaps(long a, long b) {
            return a < to && from < b;
        }
    }

    @Test
    void noMappingOfTheHostIsEverWritableAndExecutableWhilePatching() throws Throwable {
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        SafepointCoordinator coordinator = new SafepointCoordinator(0);
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host, coordinator, failures::add)) {
            Stub g = patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
            JitObject caller = PatchFixtures.load(host, "lazy_caller");
            MethodHandle loop = host.downcall("loop_g", LONG_LONG);
            List<MethodHandle> fs = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                fs.add(host.downcall("f" + i, LONG_LONG));
            }
            assertEquals(2L * (99 * 100 / 2), (long) loop.invokeExact(100L), "compiles g, the first call");
            patcher.safepoint();   // every site direct now: each round below moves all five there and back

            List<Range> owned = new ArrayList<>();
            for (JitObject o : host.objects()) {
                owned.add(new Range(o.mapping().address(), o.mapping().address() + o.mapping().byteSize()));
            }
            long page = Libc.pageSize();
            long stubPage = Math.floorDiv(g.address(), page) * page;
            owned.add(new Range(stubPage, stubPage + 2 * page));

            AtomicBoolean done = new AtomicBoolean();
            AtomicLong samples = new AtomicLong();
            AtomicLong calls = new AtomicLong();
            List<String> writableAndExecutable = new CopyOnWriteArrayList<>();
            Thread sampler = Thread.ofPlatform().name("maps sampler").start(() -> {
                try {
                    while (!done.get()) {
                        for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
                            String[] parts = line.split("\\s+");
                            String[] range = parts[0].split("-");
                            long from = Long.parseUnsignedLong(range[0], 16);
                            long to = Long.parseUnsignedLong(range[1], 16);
                            boolean ours = line.contains("/memfd:safepointkit")
                                    || owned.stream().anyMatch(r -> r.overlaps(from, to));
                            if (ours && parts[1].charAt(1) == 'w' && parts[1].charAt(2) == 'x') {
                                writableAndExecutable.add(line);
                            }
                        }
                        samples.incrementAndGet();
                    }
                } catch (IOException | RuntimeException | Error e) {
                    failures.add(e);
                }
            });
            // The caller is a mutator: every stop waits until it is out of JIT code, so the sites
            // written at a stop are written while it is stopped, and it then runs through them all
            // (f0-f3 and loop_g: the five sites, three of them unaligned).
            AtomicLong iterations = new AtomicLong();
            Thread callerThread = Thread.ofPlatform().name("caller").start(() -> {
                try (Mutator m = coordinator.attach()) {
                    while (!done.get()) {
                        try (var scope = m.enter()) {
                            long r = (long) loop.invokeExact(1000L);
                            if (r != 2L * (999 * 1000 / 2)) {
                                throw new AssertionError("loop_g(1000) returned " + r);
                            }
                            for (MethodHandle f : fs) {
                                long x = iterations.get() & 0xFFFF;
                                long fx = (long) f.invokeExact(x);
                                if (fx != 2 * x + 1) {
                                    throw new AssertionError("f(" + x + ") returned " + fx);
                                }
                            }
                        }
                        calls.addAndGet(1004);
                        iterations.incrementAndGet();
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            });
            long mprotects = Libc.mprotectCalls();
            long barriers = Libc.membarrierCalls();
            long patchesBefore = patcher.patchCount();
            long rounds = 0;
            try {
                for (; (rounds < ROUNDS || samples.get() < SAMPLES) && failures.isEmpty(); rounds++) {
                    patcher.unlink("g");    // the aligned sites now, while the caller runs them
                    patcher.safepoint();    // the unaligned ones at a stop
                    awaitCallsThrough(host, caller, g.address(), iterations, failures);
                    patcher.relink("g");
                    patcher.safepoint();
                    awaitCallsThrough(host, caller, g.body().orElseThrow(), iterations, failures);
                }
            } finally {
                done.set(true);
                sampler.join();
                callerThread.join();
            }
            long mprotectsOnThePatchPath = Libc.mprotectCalls() - mprotects;
            long barriersMade = Libc.membarrierCalls() - barriers;
            long patches = patcher.patchCount() - patchesBefore;
            if (!failures.isEmpty()) {
                AssertionError e = new AssertionError(failures.size() + " failures on other threads");
                failures.forEach(e::addSuppressed);
                throw e;
            }
            assertTrue(samples.get() >= SAMPLES, "the sampler read /proc/self/maps only " + samples.get() + " times");
            assertTrue(calls.get() > 0, "the caller made no call while patching");
            assertEquals(List.of(), writableAndExecutable, "mappings of the host or patcher seen writable and executable");
            assertEquals(0, mprotectsOnThePatchPath, "mprotect calls while making " + patches + " patches");
            long aligned = sitesOf(host, caller).stream().filter(s -> s.address() % 4 == 0).count();
            assertEquals(2, aligned);
            assertEquals(5, sitesOf(host, caller).size());
            assertEquals(2 * 5 * rounds, patches, "every site there and back in every round");
            // One barrier per relink or unlink (for both its aligned stores), one per stop for its three.
            assertEquals(2 * rounds + 2 * rounds, barriersMade, "membarrier calls");
        }
    }

    @Test
    void theCodeIsReadExecuteAndItsAliasReadWriteAndBothGoAtUnload() throws Throwable {
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
            JitObject caller = PatchFixtures.load(host, "lazy_caller");
            LoadedSection text = caller.loaded().sections().stream().filter(LoadedSection::executable).findFirst().orElseThrow();
            assertEquals("r-xs", protectionAt(text.address()), "code runs from the shared memory file, never writable");
            var alias = host.codeAliases().writable(text.address(), text.size()).orElseThrow();
            assertTrue(alias.address() != text.address());
            assertEquals("rw-s", protectionAt(alias.address()), "the alias is writable, never executable");
            long aliasAddress = alias.address();
            host.unload(caller, true);
            assertTrue(protectionAt(aliasAddress).isEmpty(), "the alias is unmapped with the code");
            org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () -> alias.get(ValueLayout.JAVA_BYTE, 0),
                    "a write through an alias of unloaded code is refused, never a use after free");
            Stub g = patcher.stub("g").orElseThrow();
            assertEquals("r-xs", protectionAt(g.address()), "the patcher's stubs run from a memory file too");
        }
    }

    /**
     * Checks that every site of g in {@code caller} leads to {@code target}, then waits until the
     * caller has run one whole iteration through them.
     */
    private static void awaitCallsThrough(JitHost host, JitObject caller, long target, AtomicLong iterations,
            List<Throwable> failures) {
        for (CallSite s : sitesOf(host, caller)) {
            assertEquals(target, PatchFixtures.branchTarget(s.address()), "every site after the stop");
        }
        long seen = iterations.get();
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (iterations.get() < seen + 2 && failures.isEmpty()) {
            assertTrue(System.nanoTime() < deadline, "the caller made no call through the sites in 10 s");
            LockSupport.parkNanos(10_000);   // the caller needs this core more than the wait does
        }
    }

    private static List<CallSite> sitesOf(JitHost host, JitObject in) {
        return host.symbol("g").orElseThrow().callSites().stream().filter(s -> s.objectKey() == in.key() && s.isBranch())
                .toList();
    }

    /** The permissions ("r-xs", ...) of the mapping that holds {@code address}; empty if none. */
    static String protectionAt(long address) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
                String[] parts = line.split("\\s+");
                String[] range = parts[0].split("-");
                if (Long.compareUnsigned(address, Long.parseUnsignedLong(range[0], 16)) >= 0
                        && Long.compareUnsigned(address, Long.parseUnsignedLong(range[1], 16)) < 0) {
                    return parts[1];
                }
            }
            return "";
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
