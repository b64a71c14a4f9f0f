package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.internal.Libc;
import dev.safepointkit.stackmap.elf.ElfFile;
import java.lang.foreign.Linker;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * No page is writable and executable while an object is being linked either, as
 * {@link ObjectLinker} says: the process's mappings are read from inside the linker, when it asks
 * for the address of caller.o's undefined {@code add}, which is while it relocates the code it has
 * already copied in. At that moment the object's code is mapped read + execute, its alias read +
 * write, and none of the object's mappings is both (the JVM's own code cache is, and is left out).
 */
class LinkingWriteXorExecuteTest {
    @Test
    void noMappingIsWritableAndExecutableWhileTheLinkerWritesTheCode() throws Exception {
        ElfFile elf = ElfFile.parse(JitFixtures.segment("caller"));
        long abs = Linker.nativeLinker().defaultLookup().find("labs").orElseThrow().address();
        List<String> seen = new ArrayList<>();
        List<String> during = new ArrayList<>();
        ObjectLinker.Linked linked = new ObjectLinker("caller.o", 1, elf, elf.symbols(), name -> {
            if (during.isEmpty()) {
                during.addAll(JitFixtures.mappings());
            }
            seen.add(name);
            return abs;
        }).link();
        try {
            assertTrue(seen.contains("add"), "the linker asked for add while linking: " + seen);
            List<String> own = new ArrayList<>();
            for (String line : during) {
                if (overlaps(line, linked.raw().address(), linked.raw().byteSize())
                        || overlaps(line, linked.rawCodeAlias().address(), linked.rawCodeAlias().byteSize())) {
                    own.add(line);
                }
            }
            assertTrue(own.stream().anyMatch(line -> overlaps(line, linked.code().address(), 1)
                    && line.split("\\s+")[1].equals("r-xs")), "the code was mapped read + execute while linking: " + own);
            List<String> both = own.stream().filter(line -> {
                String perms = line.split("\\s+")[1];
                return perms.charAt(1) == 'w' && perms.charAt(2) == 'x';
            }).toList();
            assertEquals(List.of(), both, "mappings of the object both writable and executable while linking");
            assertTrue(own.stream().anyMatch(line -> line.split("\\s+")[1].equals("rw-s")),
                    "and its alias read + write: " + own);
        } finally {
            linked.arena().close();
            Libc.munmap(linked.raw());
            if (linked.rawCodeAlias().byteSize() > 0) {
                Libc.munmap(linked.rawCodeAlias());
            }
        }
    }

    private static boolean overlaps(String mapsLine, long address, long size) {
        String[] range = mapsLine.split("\\s+")[0].split("-");
        long start = Long.parseUnsignedLong(range[0], 16);
        long end = Long.parseUnsignedLong(range[1], 16);
        return size > 0 && Long.compareUnsigned(address, end) < 0 && Long.compareUnsigned(start, address + size) < 0;
    }
}
