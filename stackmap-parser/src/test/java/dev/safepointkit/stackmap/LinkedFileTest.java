package dev.safepointkit.stackmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.lang.foreign.Arena;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A shared object linked from two fixture objects: its section holds two stack maps (llvm-readobj
 * shows only the first), and the stored function addresses are the functions' addresses.
 */
class LinkedFileTest {

    @ParameterizedTest
    @ValueSource(strings = {"x86_64", "aarch64", "aarch64_be"})
    void readsBothStackMapsAndResolvesTheirAddresses(String arch) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            ElfFile elf = ElfFile.parse(Fixtures.map(
                    Fixtures.stackMapFixtures().resolve("linked/" + arch + "/libpair.so"), arena));
            assertEquals(ElfFile.ET_DYN, elf.type());
            assertEquals("libpair.so", elf.soname().orElseThrow());
            ObjectStackMaps maps = ObjectStackMaps.read(elf).orElseThrow();
            List<StackMap> stackMaps = maps.stackMaps().stackMaps();
            assertEquals(2, stackMaps.size());
            assertEquals(stackMaps.get(0).byteSize(), stackMaps.get(1).sectionOffset());
            assertEquals(maps.section().size(), stackMaps.get(0).byteSize() + stackMaps.get(1).byteSize());

            List<String> first = Fixtures.definedFunctions("stackmaps.ll");
            List<String> second = Fixtures.definedFunctions("statepoints.ll");
            assertEquals(first.size(), stackMaps.get(0).functionCount());
            assertEquals(second.size(), stackMaps.get(1).functionCount());

            ElfSection text = elf.findSection(".text").orElseThrow();
            for (int m = 0; m < 2; m++) {
                List<String> names = m == 0 ? first : second;
                for (int f = 0; f < names.size(); f++) {
                    FunctionRecord fn = stackMaps.get(m).function(f);
                    ElfSymbol symbol = maps.functionSymbol(m, f).orElseThrow();
                    assertEquals(names.get(f), symbol.name());
                    assertEquals(symbol.value(), fn.functionAddress());
                    assertNotEquals(0, fn.functionAddress());
                    assertTrue(fn.functionAddress() >= text.address()
                            && fn.functionAddress() < text.address() + text.size(), "address inside .text");
                }
            }
            // The second stack map's statepoints read as statepoints.
            StackMap sp = stackMaps.get(1);
            for (int r = 0; r < sp.recordCount(); r++) {
                StatepointRecord.of(sp.record(r));
            }
        }
    }
}
