package dev.safepointkit.stackmap.dwarf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfRelocation;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.LlvmTools;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Every row of every FDE in the x86-64 fixture objects, as {@code llvm-dwarfdump-19 --eh-frame}
 * prints it, evaluated at the row's first and last byte.
 */
class LlcEhFrameTest {
    private static final String[] NAMES = {"RAX", "RDX", "RCX", "RBX", "RSI", "RDI", "RBP", "RSP", "R8", "R9", "R10", "R11",
        "R12", "R13", "R14", "R15", "RIP"};
    private static final Pattern FDE = Pattern.compile("^[0-9a-f]{8} [0-9a-f]{8} [0-9a-f]{8} FDE cie=[0-9a-f]+ pc=([0-9a-f]+)\\.\\.\\.([0-9a-f]+)$");
    private static final Pattern ROW = Pattern.compile("^\\s+0x([0-9a-f]+): (CFA=.*)$");
    private static final int R_X86_64_PC32 = 2;
    private static final int R_X86_64_32 = 10;

    @Test
    void everyRowOfTheFixturesMatchesLlvmDwarfdump() throws Exception {
        Path dwarfdump = LlvmTools.require("llvm-dwarfdump-19");
        Path root = Fixtures.projectRoot().resolve("fixtures");
        List<Path> objects = new ArrayList<>();
        for (Path dir : List.of(root.resolve("jit/x86_64"), root.resolve("stackmaps/x86_64/O0"), root.resolve("stackmaps/x86_64/O2"))) {
            try (Stream<Path> s = Files.list(dir)) {
                s.filter(p -> p.toString().endsWith(".o")).sorted().forEach(objects::add);
            }
        }
        int rows = 0;
        for (Path object : objects) {
            rows += compare(dwarfdump, object);
        }
        assertTrue(rows > 300, "only " + rows + " rows compared");
    }

    private static int compare(Path dwarfdump, Path object) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            ElfFile elf = ElfFile.parse(Fixtures.map(object, arena));
            Optional<ElfSection> section = elf.findSection(".eh_frame");
            if (section.isEmpty()) {
                return 0;
            }
            EhFrame eh = EhFrame.parse(relocated(elf, section.get(), arena), 0);
            List<String> listing = run(dwarfdump, object);
            int rows = 0;
            long pcEnd = 0;
            List<long[]> starts = new ArrayList<>();
            List<String> expected = new ArrayList<>();
            for (int i = 0; i <= listing.size(); i++) {
                String line = i < listing.size() ? listing.get(i) : "";
                Matcher fde = FDE.matcher(line);
                Matcher row = ROW.matcher(line);
                if (row.matches()) {
                    starts.add(new long[] {Long.parseLong(row.group(1), 16)});
                    expected.add(row.group(2));
                } else if (fde.matches() || i == listing.size()) {
                    for (int r = 0; r < starts.size(); r++) {
                        long from = starts.get(r)[0];
                        long to = r + 1 < starts.size() ? starts.get(r + 1)[0] : pcEnd;
                        EhFrame.Fde f = eh.fdeFor(from);
                        assertNotNull(f, object + ": no FDE for 0x" + Long.toHexString(from));
                        assertEquals(expected.get(r), format(CfiRow.at(eh, f, from)), object + " at 0x" + Long.toHexString(from));
                        assertEquals(expected.get(r), format(CfiRow.at(eh, f, to - 1)), object + " at 0x" + Long.toHexString(to - 1));
                        rows++;
                    }
                    starts.clear();
                    expected.clear();
                    if (fde.matches()) {
                        pcEnd = Long.parseLong(fde.group(2), 16);
                    }
                }
            }
            return rows;
        }
    }

    /** The section with its pc-relative relocations applied, every section of the object at address 0 (as dwarfdump lays a .o out). */
    private static MemorySegment relocated(ElfFile elf, ElfSection eh, Arena arena) throws Exception {
        MemorySegment copy = arena.allocate(eh.size());
        copy.copyFrom(elf.contents(eh));
        List<ElfSymbol> symbols = elf.symbols(elf.symbolTableOf(relocationSection(elf, eh)));
        for (ElfRelocation r : elf.relocationsFor(eh)) {
            // PC32 for pc_begin (and pc-relative personality and LSDA pointers), 32 for absolute ones.
            assertTrue(r.type() == R_X86_64_PC32 || r.type() == R_X86_64_32, "relocation at 0x" + Long.toHexString(r.offset()));
            long value = symbols.get(r.symbolIndex()).value() + r.addend() - (r.type() == R_X86_64_PC32 ? r.offset() : 0);
            copy.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), r.offset(), (int) value);
        }
        return copy;
    }

    private static ElfSection relocationSection(ElfFile elf, ElfSection target) {
        return elf.sections().stream().filter(s -> s.type() == ElfSection.SHT_RELA && s.info() == target.index()).findFirst()
                .orElseThrow();
    }

    private static String format(CfiRow row) {
        StringBuilder b = new StringBuilder("CFA=").append(NAMES[row.cfaRegister()]).append(row.cfaOffset() >= 0 ? "+" : "")
                .append(row.cfaOffset()).append(':');
        String sep = " ";
        for (int c = 0; c < CfiRow.COLUMNS; c++) {
            if (row.rule(c) == CfiRow.SAVED) {
                b.append(sep).append(NAMES[c]).append("=[CFA").append(row.savedOffset(c)).append(']');
                sep = ", ";
            } else if (row.rule(c) == CfiRow.UNDEFINED) {
                b.append(sep).append(NAMES[c]).append("=undefined");
                sep = ", ";
            }
        }
        return b.toString();
    }

    private static List<String> run(Path tool, Path object) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(tool.toString(), "--eh-frame", object.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        return out.lines().toList();
    }
}
