package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.roots.SafepointCoordinator;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A host and its patcher close cleanly in either order: no crash, no exception, every mapping
 * unmapped. {@code try (host; patcher)} closes the patcher first, while the host's code still
 * calls the patcher's stubs.
 */
class CloseOrderTest {
    private static final FunctionDescriptor LONG_LONG = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);

    private final List<Throwable> failures = new CopyOnWriteArrayList<>();
    private long mappingsBefore;
    private JitHost host;
    private CodePatcher patcher;

    @BeforeEach
    void setUp() throws Throwable {
        mappingsBefore = JitHost.liveMappings();
        host = new JitHost();
        patcher = new CodePatcher(host, new SafepointCoordinator(0), failures::add);
        patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
        PatchFixtures.load(host, "lazy_caller");
        // Compiles g; f0's call site is unaligned, so without a safepoint it keeps calling the stub.
        assertEquals(41L, call("f0", 20));
    }

    private long call(String function, long argument) throws Throwable {
        return (long) host.downcall(function, LONG_LONG).invokeExact(argument);
    }

    @Test
    void tryWithResourcesClosesThePatcherThenTheHostAndUnmapsEverything() throws Throwable {
        JitHost host = this.host;
        CodePatcher patcher = this.patcher;
        try (host; patcher) {
            assertEquals(2L * 7 + 1, call("f1", 7));
        }
        assertEquals(mappingsBefore, JitHost.liveMappings(), "objects and stub blocks unmapped");
        assertEquals(List.of(), failures);
    }

    @Test
    void closingThePatcherFirstKeepsItsStubsUntilNoLoadedCodeCallsThem() throws Throwable {
        long open = JitHost.liveMappings();
        patcher.close();
        assertEquals(open, JitHost.liveMappings(), "lazy_caller still calls g's stub: it stays mapped");
        assertEquals(41L, call("f0", 20), "through the stub into g's body, after the patcher closed");
        assertTrue(host.address("g").isEmpty(), "the host links no new object to the stub");
        patcher.close();  // again: nothing to do

        host.close();
        assertEquals(mappingsBefore, JitHost.liveMappings(), "the last caller's unload freed the stubs");
        assertEquals(List.of(), failures);
    }

    @Test
    void closingTheHostFirstThenThePatcherUnmapsEverythingAndForgetsTheStubs() throws Throwable {
        host.close();
        assertEquals(mappingsBefore + 1, JitHost.liveMappings(), "only the patcher's stub block is left");
        patcher.close();
        assertEquals(mappingsBefore, JitHost.liveMappings(), "the stub block unmapped");
        // The host outlives both closes; what it loads now must not link to the freed stub.
        assertTrue(host.address("g").isEmpty(), "the host no longer hands out the freed stub");
        JitLoadException e = assertThrows(JitLoadException.class, () -> PatchFixtures.load(host, "lazy_caller"));
        assertTrue(e.getMessage().contains("'g'"), e.getMessage());
        patcher.close();  // again: nothing to do
        host.close();
        assertEquals(mappingsBefore, JitHost.liveMappings());
        assertEquals(List.of(), failures);
    }

    @Test
    void aClosedPatcherRefusesToPatch() throws Exception {
        patcher.close();
        assertThrows(IllegalStateException.class, () -> patcher.declare("h", fn -> null));
        assertThrows(IllegalStateException.class, () -> patcher.relink("g"));
        assertThrows(IllegalStateException.class, () -> patcher.safepoint());
        assertThrows(IllegalStateException.class, patcher::hold);
        // The refused hold let go of the lock: another thread is refused too, rather than blocked.
        java.util.concurrent.CompletableFuture<Throwable> other = java.util.concurrent.CompletableFuture.supplyAsync(
                () -> assertThrows(IllegalStateException.class, patcher::hold));
        assertTrue(other.get(10, java.util.concurrent.TimeUnit.SECONDS).getMessage().contains("closed"));
        host.close();
    }
}
