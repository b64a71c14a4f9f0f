package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.perf.JitdumpWriter;
import dev.safepointkit.events.perf.PerfMapWriter;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The perf map and jitdump files, written for real loaded code and read back. */
class PerfListenersTest {

    @Test
    void perfMapHasALinePerFunction(@TempDir Path tmp) throws Exception {
        Path map = tmp.resolve("perf-test.map");
        try (JitHost host = new JitHost(); PerfMapWriter writer = new PerfMapWriter(map)) {
            host.addListener(writer);
            JitObject math = JitFixtures.load(host, "math");
            List<String> expected = new ArrayList<>();
            for (EmittedFunction f : math.functions()) {
                expected.add(Long.toHexString(f.address()) + " " + Long.toHexString(f.size()) + " " + f.name());
            }
            assertEquals(expected, Files.readAllLines(map));
            for (String line : Files.readAllLines(map)) {
                assertTrue(line.matches("[0-9a-f]+ [0-9a-f]+ \\S+"), line);
            }
        }
    }

    @Test
    void jitdumpHasHeaderCodeLoadsWithBytesAndClose(@TempDir Path tmp) throws Exception {
        JitdumpWriter writer = JitdumpWriter.inDirectory(tmp);
        String markerName = writer.path().toString();
        assertTrue(JitFixtures.mappings().stream().anyMatch(l -> l.endsWith(markerName) && l.contains(" r-xp ")),
                "the PROT_READ|PROT_EXEC marker mapping perf looks for");
        List<EmittedFunction> functions;
        try (JitHost host = new JitHost()) {
            host.addListener(writer);
            functions = JitFixtures.load(host, "math").functions();
            ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(writer.path())).order(ByteOrder.nativeOrder());
            assertEquals(0x4A695444, in.getInt());
            assertEquals(1, in.getInt());
            assertEquals(40, in.getInt());
            assertEquals(62, in.getInt());
            in.getInt();
            assertEquals(ProcessHandle.current().pid(), in.getInt());
            long headerTime = in.getLong();
            assertEquals(0L, in.getLong());
            long lastTime = headerTime;
            for (int i = 0; i < functions.size(); i++) {
                EmittedFunction f = functions.get(i);
                int start = in.position();
                assertEquals(0, in.getInt(), "JIT_CODE_LOAD");
                int total = in.getInt();
                long time = in.getLong();
                assertTrue(time >= lastTime);
                lastTime = time;
                assertEquals(ProcessHandle.current().pid(), in.getInt());
                assertTrue(in.getInt() > 0, "tid");
                assertEquals(f.address(), in.getLong(), "vma");
                assertEquals(f.address(), in.getLong(), "code_addr");
                assertEquals(f.size(), in.getLong(), "code_size");
                assertEquals(i, in.getLong(), "code_index");
                StringBuilder name = new StringBuilder();
                for (byte b = in.get(); b != 0; b = in.get()) {
                    name.append((char) b);
                }
                assertEquals(f.name(), name.toString());
                byte[] code = new byte[(int) f.size()];
                in.get(code);
                assertArrayEquals(f.code().toArray(ValueLayout.JAVA_BYTE), code);
                assertEquals(total, in.position() - start);
            }
            assertFalse(in.hasRemaining(), "nothing after the loads until close");
        }
        writer.close();
        ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(writer.path())).order(ByteOrder.nativeOrder());
        in.position(in.limit() - 16);
        assertEquals(3, in.getInt(), "JIT_CODE_CLOSE");
        assertEquals(16, in.getInt());
        assertFalse(JitFixtures.mappings().stream().anyMatch(l -> l.endsWith(markerName)), "marker unmapped on close");
        assertTrue(new String(Files.readAllBytes(writer.path()), StandardCharsets.ISO_8859_1).contains("fib\0"));
    }
}
