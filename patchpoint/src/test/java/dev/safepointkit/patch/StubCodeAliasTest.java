package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A stub block's code is written once, through an alias of its memory file that the block unmaps
 * before it is used ({@link StubBlock}): afterwards no mapping of that file is writable, at the
 * address the stubs run from or at any other.
 */
class StubCodeAliasTest {
    private static final String STUB_FILE = "/memfd:safepointkit-stubs";

    @Test
    void noMappingOfAStubBlocksCodeIsWritableOnceItIsBuilt() throws Throwable {
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            Stub g = patcher.declare("g", fn -> PatchFixtures.load(host, "g_v1"));
            assertEquals("r-xs", WriteXorExecuteTest.protectionAt(g.address()), "the stub runs from the memory file");
            List<String> stubFile = Files.readAllLines(Path.of("/proc/self/maps")).stream()
                    .filter(line -> line.contains(STUB_FILE)).toList();
            assertTrue(stubFile.stream().anyMatch(line -> covers(line, g.address())), stubFile.toString());
            List<String> writable = stubFile.stream().filter(line -> line.split("\\s+")[1].charAt(1) == 'w').toList();
            assertEquals(List.of(), writable, "a writable mapping of stub code outlived its block's construction");
        }
    }

    private static boolean covers(String mapsLine, long address) {
        String[] range = mapsLine.split("\\s+")[0].split("-");
        return Long.compareUnsigned(address, Long.parseUnsignedLong(range[0], 16)) >= 0
                && Long.compareUnsigned(address, Long.parseUnsignedLong(range[1], 16)) < 0;
    }
}
