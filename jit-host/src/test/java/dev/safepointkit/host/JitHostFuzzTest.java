package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfFormatException;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * Arbitrary bytes, as an object file handed to {@link JitHost#load}: either they load, and can
 * then be described to listeners and unloaded again, or they are refused with a
 * JitLoadException that leaves the host as it was: no mapping left ({@link JitHost#liveMappings}),
 * no object or symbol published, no event heard. Any other exception, a leak or a hang is a
 * finding. Loaded code is never run: the bytes are only mapped, linked and read.
 *
 * <p>Each input goes to two hosts that live for the whole run: one with nothing loaded, and one
 * that already holds math.o and data.o, so that objects importing their functions (caller.o and
 * its mutants) link too. In both, what the fixtures import from the embedder (host_callback, the
 * safepoint polls) is defined at an address nothing calls.
 *
 * <p>{@code ./mvnw verify} runs this over the seed corpus in
 * {@code src/test/resources/dev/safepointkit/host/JitHostFuzzTestInputs/loadsOrRefuses/} (the
 * fixture objects, and every crashing input found so far); {@code scripts/fuzz.sh} fuzzes it for real.
 */
class JitHostFuzzTest {
    private static final Path SEEDS = Fixtures.projectRoot()
            .resolve("jit-host/src/test/resources/dev/safepointkit/host/JitHostFuzzTestInputs/loadsOrRefuses");
    /** How many of an input's symbol names are compared before and after: enough to catch a leak, cheap per run. */
    private static final int NAMES_CHECKED = 32;

    private static final List<String> EVENTS = new ArrayList<>();
    private static final List<JitHost> HOSTS = hosts();

    @FuzzTest(maxDuration = "2m")
    void loadsOrRefuses(byte[] data) throws JitLoadException {
        List<String> names = namesIn(data);
        for (JitHost host : HOSTS) {
            long mappings = JitHost.liveMappings();
            List<JitObject> objects = host.objects();
            Map<String, Optional<SymbolInfo>> symbols = snapshot(host, names);
            EVENTS.clear();
            JitObject object;
            try {
                object = host.load("input.o", MemorySegment.ofArray(data));
            } catch (JitLoadException refused) {
                assertUnchanged(host, mappings, objects, symbols, List.of(), refused.getMessage());
                continue;
            }
            List<String> heard = new ArrayList<>();
            heard.add("objectLoaded " + object.key());
            object.functions().forEach(f -> heard.add("functionEmitted " + f.name()));
            assertEquals(heard, EVENTS, "events of a successful load");
            readEverything(object);
            host.unload(object, false);
            heard.add("objectFreeing " + object.key());
            assertUnchanged(host, mappings, objects, symbols, heard, "after unload");
        }
    }

    /** The seed corpus holds every fixture object, byte for byte: a regenerated fixture needs a new seed. */
    @Test
    void seedCorpusHoldsEveryFixture() throws IOException {
        List<Path> fixtures;
        try (Stream<Path> files = Files.list(JitFixtures.object("math").getParent())) {
            fixtures = files.filter(f -> f.toString().endsWith(".o")).sorted().toList();
        }
        for (Path fixture : fixtures) {
            Path seed = SEEDS.resolve(fixture.getFileName());
            assertArrayEquals(Files.readAllBytes(fixture), Files.readAllBytes(seed), seed + " differs from " + fixture);
        }
    }

    @AfterAll
    static void closeHosts() {
        HOSTS.forEach(JitHost::close);
    }

    private static void assertUnchanged(JitHost host, long mappings, List<JitObject> objects,
            Map<String, Optional<SymbolInfo>> symbols, List<String> events, String context) {
        assertEquals(mappings, JitHost.liveMappings(), "mappings left behind: " + context);
        assertEquals(objects, host.objects(), "objects published: " + context);
        assertEquals(symbols, snapshot(host, List.copyOf(symbols.keySet())), "symbols published: " + context);
        assertEquals(events, EVENTS, "events heard: " + context);
    }

    /**
     * Reads what listeners were given: every function's first and last byte and the stack map
     * section's ends. A segment that lies outside the mapping throws here. Only the ends, so a
     * huge zero-filled section is not paged in.
     */
    private static void readEverything(JitObject object) {
        for (EmittedFunction f : object.functions()) {
            if (f.code().byteSize() > 0) {
                f.code().get(ValueLayout.JAVA_BYTE, 0);
                f.code().get(ValueLayout.JAVA_BYTE, f.code().byteSize() - 1);
            }
        }
        object.loaded().stackMapSection().filter(s -> s.byteSize() > 0).ifPresent(s -> {
            s.get(ValueLayout.JAVA_BYTE, 0);
            s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1);
        });
    }

    private static Map<String, Optional<SymbolInfo>> snapshot(JitHost host, List<String> names) {
        Map<String, Optional<SymbolInfo>> symbols = new LinkedHashMap<>();
        for (String name : names) {
            symbols.put(name, host.symbol(name));
        }
        return symbols;
    }

    /** Up to NAMES_CHECKED symbol names of {@code data}, when it parses that far. */
    private static List<String> namesIn(byte[] data) {
        Set<String> names = new HashSet<>();
        try {
            for (ElfSymbol s : ElfFile.parse(MemorySegment.ofArray(data)).symbols()) {
                if (!s.name().isEmpty() && names.size() < NAMES_CHECKED) {
                    names.add(s.name());
                }
            }
        } catch (ElfFormatException unreadable) {
            // The host will refuse it before it reads a symbol.
        }
        return List.copyOf(names);
    }

    private static List<JitHost> hosts() {
        try {
            JitHost alone = host();
            JitHost linked = host();
            JitFixtures.load(linked, "math");
            JitFixtures.load(linked, "data");
            return List.of(alone, linked);
        } catch (JitLoadException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A host that records events and defines what the fixtures import from the embedder. */
    private static JitHost host() throws JitLoadException {
        JitHost host = new JitHost();
        host.addListener(new JitEventListener() {
            @Override
            public void objectLoaded(LoadedObject object) {
                EVENTS.add("objectLoaded " + object.key());
            }

            @Override
            public void functionEmitted(EmittedFunction function) {
                EVENTS.add("functionEmitted " + function.name());
            }

            @Override
            public void objectFreeing(LoadedObject object) {
                EVENTS.add("objectFreeing " + object.key());
            }
        });
        for (String name : embedderImports()) {
            host.defineRuntimeSymbol(name, MemorySegment.ofAddress(0x10000));
        }
        return host;
    }

    /** Names the fixtures import that no fixture defines and the process does not have. */
    private static Set<String> embedderImports() {
        Set<String> imported = new HashSet<>();
        Set<String> defined = new HashSet<>();
        try (Stream<Path> files = Files.list(JitFixtures.object("math").getParent())) {
            for (Path f : files.filter(f -> f.toString().endsWith(".o")).toList()) {
                for (ElfSymbol s : ElfFile.parse(MemorySegment.ofArray(Files.readAllBytes(f))).symbols()) {
                    (s.isUndefined() ? imported : defined).add(s.name());
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        imported.removeAll(defined);
        imported.remove("");
        try (JitHost probe = new JitHost()) {
            imported.removeIf(name -> probe.address(name).isPresent());
        }
        return imported;
    }
}
