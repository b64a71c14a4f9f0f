package dev.safepointkit.stress.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.internal.Libc;
import java.io.IOException;
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
 * make them (read-only data), never a patch.
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
        // Loading makes read-only data read-only with mprotect; patching makes none.
        long loads = r.redefinitions() + r.lazyCompiles() + 1;
        assertTrue(mprotectCalls <= 2 * loads, mprotectCalls + " mprotect calls for " + loads + " loads: " + r.summary());
    }
}
