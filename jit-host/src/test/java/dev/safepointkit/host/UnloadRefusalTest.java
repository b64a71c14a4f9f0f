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
}
