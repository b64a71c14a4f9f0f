package dev.safepointkit.stackmap;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import dev.safepointkit.stackmap.testing.StackMapWalker;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Optional;

/**
 * Arbitrary bytes, as a stack map section, as an ELF file and as any object file (Mach-O and COFF
 * seeds), either parse and can then be read in full, or are refused with a format exception; a
 * section that parses passes the record-by-record checks too, which find the same records. Any other exception, a hang or an
 * OutOfMemoryError is a finding.
 *
 * <p>{@code ./mvnw verify} runs these over the seed corpus in
 * {@code src/test/resources/dev/safepointkit/stackmap/StackMapFuzzTestInputs/} (real sections and
 * objects from the fixtures); {@code scripts/fuzz.sh} fuzzes them for real.
 */
class StackMapFuzzTest {

    @FuzzTest(maxDuration = "2m")
    void sectionBytes(byte[] data) {
        for (ByteOrder order : new ByteOrder[] {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN}) {
            StackMapSection section;
            try {
                section = StackMapSection.parse(MemorySegment.ofArray(data), order);
            } catch (StackMapFormatException refused) {
                continue;
            }
            for (StackMap map : section.stackMaps()) {
                // The fast checks accept nothing the detailed ones refuse, and find the same records.
                try {
                    map.recheckRecords();
                } catch (StackMapFormatException e) {
                    throw new AssertionError("the fast checks accepted what the detailed ones refuse: " + e.getMessage(), e);
                }
            }
            long viaViews = StackMapWalker.sumEverything(section);
            if (StackMapWalker.sumEverything(section, new StackMapWalker.Cursors()) != viaViews) {
                throw new AssertionError("cursors and views read different fields");
            }
            if (StackMapWalker.sumEverythingThroughArrays(section, new StackMapWalker.Cursors()) != viaViews) {
                throw new AssertionError("location and live-out arrays and views read different fields");
            }
            StackMapWalker.sumStatepoints(section);
        }
    }

    @FuzzTest(maxDuration = "2m")
    void objectBytes(byte[] data) {
        try {
            Optional<? extends StackMapObject> maps = StackMapObject.read(MemorySegment.ofArray(data));
            if (maps.isPresent()) {
                StackMapSection section = maps.get().stackMaps();
                StackMapWalker.sumEverything(section, new StackMapWalker.Cursors());
                for (int m = 0; m < section.stackMaps().size(); m++) {
                    for (int f = 0; f < section.stackMaps().get(m).functionCount(); f++) {
                        maps.get().functionName(m, f);
                    }
                }
            }
        } catch (IOException refused) {
            // Malformed Mach-O, COFF, ELF or stack map, and said so.
        }
    }

    @FuzzTest(maxDuration = "2m")
    void elfBytes(byte[] data) {
        try {
            ElfFile elf = ElfFile.parse(MemorySegment.ofArray(data));
            elf.symbols();
            elf.soname();
            Optional<ObjectStackMaps> maps = ObjectStackMaps.read(elf);
            if (maps.isPresent()) {
                StackMapSection section = maps.get().stackMaps();
                if (StackMapWalker.sumEverything(section, new StackMapWalker.Cursors()) != StackMapWalker.sumEverything(section)) {
                    throw new AssertionError("cursors and views read different fields");
                }
                maps.get().functionSymbols().forEach(s -> {
                    if (s != null && s.type() == ElfSymbol.STT_SECTION) {
                        throw new AssertionError("a function resolved to a section symbol: " + s);
                    }
                });
            }
        } catch (IOException refused) {
            // StackMapFormatException or ElfFormatException: the input is malformed and said so.
        }
    }
}
