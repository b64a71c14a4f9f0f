package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * libgcc skips an FDE whose 4-byte pc_begin has its 32 low bits zero (a function a linker
 * removed, to it), so the loader never places a function there: which mapping addresses it
 * declines.
 */
class FourGiBBoundaryTest {
    private static final long BOUNDARY = 0x7f96_0000_0000L;

    @Test
    void aMappingThatPutsACodeSectionOrAFunctionAtA4GiBBoundaryIsDeclined() throws Exception {
        ElfFile elf = ElfFile.parse(MemorySegment.ofArray(Files.readAllBytes(JitFixtures.object("math"))));
        ElfSection text = elf.sections().stream().filter(s -> s.name().equals(".text")).findFirst().orElseThrow();
        List<ElfSection> loaded = List.of(text);
        List<ElfSymbol> symbols = elf.symbols();
        Map<Integer, Long> offsets = new HashMap<>(Map.of(text.index(), 0x40L));
        ElfSymbol fib = symbols.stream().filter(s -> s.name().equals("fib")).findFirst().orElseThrow();
        assertTrue(fib.value() != 0, "math.o's fib is not .text's first byte: " + fib.value());

        // .text itself at the boundary.
        assertTrue(ObjectLinker.functionAtA4GiBBoundary(BOUNDARY - 0x40, loaded, symbols, offsets));
        // fib, inside .text, at the boundary.
        assertTrue(ObjectLinker.functionAtA4GiBBoundary(BOUNDARY - 0x40 - fib.value(), loaded, symbols, offsets));
        // The boundary inside a function but at no function's start: libgcc finds the FDE.
        assertFalse(ObjectLinker.functionAtA4GiBBoundary(BOUNDARY - 0x40 - fib.value() - 1, loaded, symbols, offsets));
        assertFalse(ObjectLinker.functionAtA4GiBBoundary(BOUNDARY + 0x1000, loaded, symbols, offsets));
    }
}
