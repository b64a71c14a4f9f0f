package dev.safepointkit.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The registry's listener is part of loading: code whose safepoints it refuses is not loaded. */
class RegistryListenerTest {

    static void hostPoll() {
    }

    @Test
    void anObjectWhoseSafepointTheRegistryRefusesIsNotLoaded() throws Exception {
        byte[] good = Files.readAllBytes(Fixtures.projectRoot().resolve("fixtures/jit/x86_64/safepoints.o"));
        byte[] bad = Fixtures.withFirstInstructionOffset(good, 0x00FF_FFFF);
        SafepointRegistry registry = new SafepointRegistry();
        List<String> heard = new ArrayList<>();
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            host.addListener(new JitEventListener() {
                @Override
                public void objectLoaded(LoadedObject object) {
                    heard.add("loaded " + object.name());
                }

                @Override
                public void objectFreeing(LoadedObject object) {
                    heard.add("freeing " + object.name());
                }
            });
            host.addListener(new RegistryListener(registry));
            host.defineUpcall("host_poll", MethodHandles.lookup().findStatic(RegistryListenerTest.class, "hostPoll",
                    MethodType.methodType(void.class)), FunctionDescriptor.ofVoid(), arena);
            long mappings = JitHost.liveMappings();

            JitLoadException e = assertThrows(JitLoadException.class, () -> host.load("bad.o", MemorySegment.ofArray(bad)));
            assertTrue(e.getMessage().startsWith("bad.o: not loaded, required listener the safepoint registry failed in "
                    + "objectLoaded: "), e.getMessage());
            assertTrue(e.getMessage().contains("outside the code"), e.getMessage());
            assertEquals(mappings, JitHost.liveMappings(), "nothing left mapped");
            assertEquals(List.of(), host.objects());
            assertTrue(host.address("polls").isEmpty(), "no symbol left");
            assertTrue(host.symbol("host_poll").orElseThrow().callSites().isEmpty(), "no call site left");
            assertEquals(0, registry.objectCount());
            assertEquals(List.of("loaded bad.o", "freeing bad.o"), heard, "an observer that heard of it hears it go");

            // The same object with its stack maps intact loads, and registers.
            host.load("good.o", MemorySegment.ofArray(good));
            assertEquals(1, registry.objectCount());
            assertTrue(host.address("polls").isPresent());
        }
    }
}
