package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/**
 * Hidden and internal symbols stay inside their object, as README.md says, whatever their
 * binding: math.o with its global {@code add} given visibility internal or hidden loads, keeps
 * {@code add} as its own symbol, publishes it nowhere, and caller.o's reference to it does not
 * resolve.
 */
class SymbolVisibilityTest {
    @Test
    void anInternalGlobalIsNotPublished() throws Throwable {
        staysInside("internal", 1);
    }

    @Test
    void aHiddenGlobalIsNotPublished() throws Throwable {
        staysInside("hidden", 2);
    }

    private static void staysInside(String visibility, int stOther) throws Throwable {
        byte[] math = ObjectEditor.of("math").symbolField("add", ObjectEditor.Field.ST_OTHER, stOther).bytes();
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            JitObject loaded = host.load("math.o", MemorySegment.ofArray(math));
            assertTrue(loaded.loaded().symbol("add").isPresent(), "the object keeps its own symbol");
            assertFalse(loaded.loaded().symbol("add").orElseThrow().global(), visibility + ": not a global");
            assertTrue(host.address("add").isEmpty(), "not in the host's global symbols");
            // Only referred to, if at all (math.o's own references): no definer, no address.
            host.symbol("add").ifPresent(info -> {
                assertEquals(-1L, info.definingObject(), "definer of " + info);
                assertEquals(0L, info.address(), "address of " + info);
            });
            assertTrue(host.address("fib").isPresent(), "the object's other globals are published");
            JitFixtures.load(host, "data");
            JitFixtures.defineHostCallback(host, arena);
            long mappings = JitHost.liveMappings();
            JitLoadException e = assertThrows(JitLoadException.class, () -> JitFixtures.load(host, "caller"));
            assertTrue(e.getMessage().startsWith("caller.o: unresolved symbol 'add'"), e.getMessage());
            assertEquals(mappings, JitHost.liveMappings());
        }
    }
}
