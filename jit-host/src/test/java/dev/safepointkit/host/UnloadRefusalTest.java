package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * A listener asked whether an object may be unloaded that fails to answer: a required one refuses
 * the unload (it may be the one whose code still leads into the object), an observer is passed
 * over, as {@link dev.safepointkit.events.JitEventDispatcher} says.
 */
class UnloadRefusalTest {
    private static JitEventListener failingToAnswer(String name, boolean required) {
        return new JitEventListener() {
            @Override
            public boolean required() {
                return required;
            }

            @Override
            public Optional<String> unloadRefusal(LoadedObject object) {
                throw new IllegalStateException(name + " lost track");
            }

            @Override
            public String toString() {
                return name;
            }
        };
    }

    @Test
    void aRequiredListenerThatCannotAnswerRefusesTheUnloadAndTheObjectStaysLoaded() throws Throwable {
        try (JitHost host = new JitHost()) {
            JitObject math = JitFixtures.load(host, "math");
            long addBefore = host.address("add").orElseThrow();
            JitEventListener patcherLike = failingToAnswer("patcher", true);
            host.addListener(patcherLike);
            long liveBefore = JitHost.liveMappings();
            JitLoadException refused = assertThrows(JitLoadException.class, () -> host.unload(math, false));
            assertTrue(refused.getMessage().contains("math.o") && refused.getMessage().contains("patcher")
                    && refused.getMessage().contains("lost track"), refused.getMessage());
            assertEquals(addBefore, host.address("add").orElseThrow(), "math.o is still published");
            assertTrue(host.objects().contains(math));
            assertEquals(liveBefore, JitHost.liveMappings(), "nothing was unmapped");
            assertTrue(JitFixtures.anyMappingOverlaps(math.mapping().address(), math.mapping().byteSize()));
            host.listeners().remove(patcherLike);
            host.unload(math, false);
            assertTrue(host.address("add").isEmpty());
        }
    }

    @Test
    void anObserverThatCannotAnswerIsPassedOver() throws Throwable {
        try (JitHost host = new JitHost()) {
            JitObject math = JitFixtures.load(host, "math");
            host.addListener(failingToAnswer("perf map", false));
            host.unload(math, false);
            assertTrue(host.address("add").isEmpty());
            assertFalse(host.objects().contains(math));
        }
    }

    @Test
    void aForcedUnloadAndClosingTheHostDoNotAskAndFreeNewestFirst() throws Throwable {
        java.util.List<String> heard = new java.util.ArrayList<>();
        JitEventListener patcherLike = new JitEventListener() {
            @Override
            public boolean required() {
                return true;
            }

            @Override
            public Optional<String> unloadRefusal(LoadedObject object) {
                heard.add("asked " + object.name());
                return Optional.of("a stub still leads into " + object.name());
            }

            @Override
            public void objectFreeing(LoadedObject object) {
                heard.add("freeing " + object.name());
            }
        };
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared(); JitHost host = new JitHost()) {
            host.addListener(patcherLike);
            JitObject caller = JitFixtures.loadCaller(host, arena);
            assertThrows(JitLoadException.class, () -> host.unload(caller, false), "not forced: the listener refuses");
            assertEquals(java.util.List.of("asked caller.o"), heard);
            heard.clear();
            host.unload(caller, true);
            assertEquals(java.util.List.of("freeing caller.o"), heard, "a forced unload does not ask");
            assertFalse(host.objects().contains(caller));
            heard.clear();
            JitFixtures.load(host, "caller");
            host.close();   // and again when the block ends: nothing left to unload then
            assertEquals(java.util.List.of("freeing caller.o", "freeing data.o", "freeing math.o"), heard,
                    "close forces every unload, newest first, asking no one");
            assertTrue(host.objects().isEmpty());
        }
    }
}
