package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.perf.JitdumpWriter;
import dev.safepointkit.events.perf.PerfMapWriter;
import dev.safepointkit.stackmap.dwarf.CfiRow;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import java.lang.foreign.MemorySegment;
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

    /** One jitdump record: its id, where it starts in the file, and its bytes after the 16-byte header. */
    record Record(int id, int start, ByteBuffer body) {
    }

    /** Every record after the file header, in order. */
    static List<Record> records(Path jitdump) throws Exception {
        ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(jitdump)).order(ByteOrder.nativeOrder());
        in.position(in.getInt(8));   // the header's total_size
        List<Record> records = new ArrayList<>();
        while (in.hasRemaining()) {
            int start = in.position();
            int id = in.getInt();
            int total = in.getInt();
            assertTrue(total >= 16 && start + total <= in.limit(), "record at " + start + " of " + total + " bytes");
            records.add(new Record(id, start, in.slice(start + 16, total - 16).order(ByteOrder.nativeOrder())));
            in.position(start + total);
        }
        return records;
    }

    @Test
    void eachFunctionsFdeComesBeforeItsCodeLoadPlacedWherePerfPutsIt(@TempDir Path tmp) throws Exception {
        for (String fixture : List.of("math", "data", "debug")) {
            JitdumpWriter writer = JitdumpWriter.inDirectory(Files.createDirectories(tmp.resolve(fixture)));
            try (JitHost host = new JitHost()) {
                host.addListener(writer);
                JitObject object = JitFixtures.load(host, fixture);
                var ehFrame = object.loaded().section(".eh_frame").orElseThrow();
                MemorySegment original = MemorySegment.ofAddress(ehFrame.address()).reinterpret(ehFrame.size());
                EhFrame loaded = EhFrame.parse(original, ehFrame.address());
                // JIT_CODE_DEBUG_INFO (debug.o's lines) is JitdumpDebugInfoTest's.
                List<Record> records = records(writer.path()).stream().filter(r -> r.id() != 2).toList();
                assertEquals(2 * object.functions().size(), records.size(), fixture + ": an unwinding record and a load per function");
                for (int i = 0; i < object.functions().size(); i++) {
                    EmittedFunction f = object.functions().get(i);
                    Record unwinding = records.get(2 * i);
                    Record load = records.get(2 * i + 1);
                    assertEquals(4, unwinding.id(), f.name() + ": JIT_CODE_UNWINDING_INFO first");
                    assertEquals(0, load.id(), f.name() + ": then JIT_CODE_LOAD");
                    assertEquals(f.address(), load.body().getLong(16), f.name() + "'s code_addr");
                    assertEquals(f.size(), load.body().getLong(24), f.name() + "'s code_size");
                    assertUnwindingDataMatches(f, unwinding.body(), loaded, original);
                }
            }
            writer.close();
        }
    }

    /**
     * Lays the record's unwinding data out as perf does (at the code's end rounded up to 8 bytes:
     * .eh_frame, then .eh_frame_hdr), parses it there, and checks that the header leads to an FDE
     * that covers exactly the function and gives the same CFI row as the object's own at every byte.
     */
    private static void assertUnwindingDataMatches(EmittedFunction f, ByteBuffer body, EhFrame loaded, MemorySegment original)
            throws Exception {
        long unwindingSize = body.getLong(0);
        long hdrSize = body.getLong(8);
        long mappedSize = body.getLong(16);
        assertEquals(20, hdrSize, f.name() + ": eh_frame_hdr_size");
        assertEquals(unwindingSize, mappedSize, f.name() + ": mapped_size");
        assertTrue(24 + unwindingSize <= body.limit() && body.limit() - 24 - unwindingSize < 8, f.name() + ": padding");
        byte[] data = new byte[(int) unwindingSize];
        body.get(24, data);
        long ehFrameAddress = f.address() + ((f.size() + 7) & ~7L);
        MemorySegment ehFrameBytes = MemorySegment.ofArray(data).asSlice(0, unwindingSize - hdrSize);
        EhFrame copy = EhFrame.parse(ehFrameBytes, ehFrameAddress);
        assertEquals(1, copy.fdes().size(), f.name());
        EhFrame.Fde fde = copy.fdes().getFirst();
        EhFrame.Fde expected = loaded.fdeFor(f.address());
        assertEquals(f.address(), fde.pcBegin(), f.name() + ": pc_begin, relative to where perf puts the section");
        assertEquals(expected.pcRange(), fde.pcRange(), f.name() + ": pc_range");
        // A copy needs readable memory for its program: the byte array is on the heap, so CfiRow
        // reads it through the parsed section.
        for (long pc = f.address(); pc < f.address() + f.size(); pc++) {
            assertEquals(CfiRow.at(loaded, expected, pc), CfiRow.at(copy, fde, pc), f.name() + " at +" + (pc - f.address()));
        }
        ByteBuffer hdr = ByteBuffer.wrap(data, (int) (unwindingSize - hdrSize), (int) hdrSize).slice().order(ByteOrder.LITTLE_ENDIAN);
        long hdrAddress = ehFrameAddress + unwindingSize - hdrSize;
        assertEquals(1, hdr.get(0), "version");
        assertEquals(0x1b, hdr.get(1), "eh_frame_ptr_enc");
        assertEquals(0x03, hdr.get(2), "fde_count_enc");
        assertEquals(0x3b, hdr.get(3), "table_enc");
        assertEquals(ehFrameAddress, hdrAddress + 4 + hdr.getInt(4), f.name() + ": eh_frame_ptr");
        assertEquals(1, hdr.getInt(8), "fde_count");
        assertEquals(f.address(), hdrAddress + hdr.getInt(12), f.name() + ": table's initial location");
        assertEquals(ehFrameAddress + fde.offset(), hdrAddress + hdr.getInt(16), f.name() + ": table's FDE");
    }

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
                if (in.getInt(start) == 4) {   // JIT_CODE_UNWINDING_INFO, checked by the test below
                    in.position(start + in.getInt(start + 4));
                    start = in.position();
                }
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
