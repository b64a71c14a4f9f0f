package dev.safepointkit.stress.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.internal.Libc;
import dev.safepointkit.host.JitHost;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The whole patching stress (relinks, sled rewrites and retargets, redefinitions, frees) under a
 * second thread that reads /proc/self/maps the whole time: no mapping of a code memory file is
 * ever writable and executable, and no other mapping is either except the JVM's own code heap,
 * which was writable and executable before the run and grows in place from the same start
 * address while the JVM compiles. The libc binding's mprotect calls are counted too: only loads
 * make them (read-only data and GOTs), exactly as many as the same loads make alone, never a patch.
 */
class PatchStressWriteXorExecuteTest {

    private record Range(long from, long to) {
    }

    private static List<String> maps() throws IOException {
        return Files.readAllLines(Path.of("/proc/self/maps"));
    }

    private static Range range(String line) {
        String[] r = line.split("\\s+")[0].split("-");
        return new Range(Long.parseUnsignedLong(r[0], 16), Long.parseUnsignedLong(r[1], 16));
    }

    private static boolean writableAndExecutable(String line) {
        String perms = line.split("\\s+")[1];
        return perms.charAt(1) == 'w' && perms.charAt(2) == 'x';
    }

    @Test
    void noNewMappingIsWritableAndExecutableWhileEverythingIsPatched() throws Exception {
        List<Range> before = new ArrayList<>();
        for (String line : maps()) {
            if (writableAndExecutable(line)) {
                before.add(range(line));
            }
        }
        AtomicBoolean done = new AtomicBoolean();
        AtomicLong samples = new AtomicLong();
        List<String> seen = new CopyOnWriteArrayList<>();
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        Thread sampler = Thread.ofPlatform().name("maps sampler").start(() -> {
            try {
                while (!done.get()) {
                    for (String line : maps()) {
                        if (!writableAndExecutable(line)) {
                            continue;
                        }
                        Range r = range(line);
                        boolean jvm = before.stream().anyMatch(b -> b.from() == r.from());
                        if (!jvm || line.contains("/memfd:safepointkit")) {
                            seen.add(line);
                        }
                    }
                    samples.incrementAndGet();
                }
            } catch (IOException | RuntimeException | Error e) {
                failures.add(e);
            }
        });
        long mprotects = Libc.mprotectCalls();
        PatchStress.Result r;
        try {
            r = PatchStress.run(2, 5_000_000);
        } finally {
            done.set(true);
            sampler.join();
        }
        long mprotectCalls = Libc.mprotectCalls() - mprotects;
        failures.addAll(r.failures());
        if (!failures.isEmpty()) {
            AssertionError e = new AssertionError(failures.size() + " failures on other threads");
            failures.forEach(e::addSuppressed);
            throw e;
        }
        assertEquals(0, r.counts()[PatchStress.G_WRONG], r.summary());
        assertEquals(0, r.counts()[PatchStress.SLED_WRONG], r.summary());
        assertTrue(r.rounds() >= 1 && r.redefinitions() >= 1, r.summary());
        assertTrue(samples.get() >= 5, "the sampler read /proc/self/maps only " + samples.get() + " times");
        assertEquals(List.of(), seen, "mappings seen writable and executable that the JVM did not have before");
        // Loading makes read-only data and the GOT read-only with mprotect; patching makes none.
        // The run loads spin.o once, g_v1.o at each lazy compile, then g_v2.o and g_v1.o in turn.
        long v2Loads = (r.redefinitions() + 1) / 2;
        long v1Loads = r.redefinitions() / 2 + r.lazyCompiles();
        long expected = loaderMprotects("spin") + v1Loads * loaderMprotects("g_v1") + v2Loads * loaderMprotects("g_v2");
        assertEquals(expected, mprotectCalls, "mprotect calls: exactly the loads', none for "
                + r.patches() + " patches: " + r.summary());
    }

    /** The mprotect calls one load of fixture {@code name} makes, in a host of its own. */
    private static long loaderMprotects(String name) throws Exception {
        try (JitHost host = new JitHost()) {
            // Only linked, never run: spin.o's outside references need an address, not a function.
            for (String symbol : name.equals("spin") ? List.of("g", "spk_poll") : List.<String>of()) {
                host.defineRuntimeSymbol(symbol, MemorySegment.ofAddress(0x1000));
            }
            long before = Libc.mprotectCalls();
            host.load(name + ".o", MemorySegment.ofArray(PatchStress.fixture(name)));
            long made = Libc.mprotectCalls() - before;
            assertTrue(made >= 1, name + ".o: its read-only data is made read-only");
            return made;
        }
    }
}
