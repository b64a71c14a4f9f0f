package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
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

    /** Where perf inject's ELF puts the code: round_up(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), 16), its mmap's pgoff. */
    private static final long PERF_TEXT_OFFSET = 0x80;

    /**
     * One jitted-*.so file as perf inject --jit writes it for a JIT_CODE_LOAD, and the mmap it
     * gives that file: code at the text offset, then the unwinding data at the code's end rounded
     * up to 8 bytes; mapped at code_addr from the text offset on, alignUp(code_size, 8) +
     * mapped_size bytes.
     */
    record JittedFile(String name, long start, long codeSize, long length, byte[] file, long hdrOffset) {
        boolean maps(long address) {
            return Long.compareUnsigned(address - start, length) < 0;
        }

        static JittedFile of(Record load, Record unwinding) {
            ByteBuffer b = load.body();
            long codeAddr = b.getLong(16);
            int codeSize = Math.toIntExact(b.getLong(24));
            int nameEnd = 40;
            while (b.get(nameEnd) != 0) {
                nameEnd++;
            }
            String name = new String(bytes(b, 40, nameEnd - 40), StandardCharsets.UTF_8);
            byte[] code = bytes(b, b.limit() - codeSize, codeSize);
            int ehFrameOffset = Math.toIntExact((PERF_TEXT_OFFSET + codeSize + 7) & ~7L);
            if (unwinding == null) {
                byte[] file = new byte[(int) PERF_TEXT_OFFSET + codeSize];
                System.arraycopy(code, 0, file, (int) PERF_TEXT_OFFSET, codeSize);
                return new JittedFile(name, codeAddr, codeSize, codeSize, file, -1);
            }
            ByteBuffer u = unwinding.body();
            int unwindingSize = Math.toIntExact(u.getLong(0));
            int hdrSize = Math.toIntExact(u.getLong(8));
            long mappedSize = u.getLong(16);
            assertEquals(unwindingSize, mappedSize, name + ": mapped_size, all of the data");
            assertTrue(24 + unwindingSize <= u.limit() && u.limit() - 24 - unwindingSize < 8, name + ": padded to 8 bytes");
            byte[] file = new byte[ehFrameOffset + unwindingSize];
            System.arraycopy(code, 0, file, (int) PERF_TEXT_OFFSET, codeSize);
            System.arraycopy(bytes(u, 24, unwindingSize), 0, file, ehFrameOffset, unwindingSize);
            return new JittedFile(name, codeAddr, codeSize, (ehFrameOffset - PERF_TEXT_OFFSET) + mappedSize, file,
                    ehFrameOffset + unwindingSize - hdrSize);
        }

        /** The address of file offset {@code offset} in this mapping. */
        long address(long offset) {
            return start + offset - PERF_TEXT_OFFSET;
        }
    }

    private static byte[] bytes(ByteBuffer b, int from, int length) {
        byte[] out = new byte[length];
        b.get(from, out);
        return out;
    }

    /**
     * Memory as perf's unwinder sees it: each address read from the file of the last mmap that
     * covers it (a later mmap takes its range from earlier ones), as libunwind's reads of the
     * table, FDEs and CIEs go through perf's access_mem.
     */
    record PerfMemory(List<JittedFile> maps) {
        byte[] read(long address, int length) {
            byte[] out = new byte[length];
            for (int i = 0; i < length; i++) {
                long a = address + i;
                JittedFile top = null;
                for (JittedFile m : maps) {
                    if (m.maps(a)) {
                        top = m;
                    }
                }
                assertTrue(top != null, "no mapping at 0x" + Long.toHexString(a));
                long offset = a - top.start() + PERF_TEXT_OFFSET;
                assertTrue(offset < top.file().length, "0x" + Long.toHexString(a) + " is past the end of " + top.name() + "'s file");
                out[i] = top.file()[(int) offset];
            }
            return out;
        }

        int int32(long address) {
            return ByteBuffer.wrap(read(address, 4)).order(ByteOrder.LITTLE_ENDIAN).getInt();
        }
    }

    /** The jitted files of a jitdump, in load order (JIT_CODE_DEBUG_INFO records left out). */
    static List<JittedFile> jittedFiles(Path jitdump) throws Exception {
        List<JittedFile> files = new ArrayList<>();
        Record unwinding = null;
        for (Record r : records(jitdump)) {
            if (r.id() == 4) {
                unwinding = r;
            } else if (r.id() == 0) {
                files.add(JittedFile.of(r, unwinding));
                unwinding = null;
            }
        }
        return files;
    }

    @Test
    void everyFunctionsUnwindingDataIsReadRightThroughPerfsMappings(@TempDir Path tmp) throws Exception {
        // Several objects in one jitdump: math (five functions), chain (a call chain) and data in
        // one host, then debug (fib again) in another, whose code may reuse the first's addresses.
        JitdumpWriter writer = JitdumpWriter.inDirectory(tmp);
        int checked = 0;
        for (List<String> fixtures : List.of(List.of("math", "chain", "data"), List.of("debug"))) {
            try (JitHost host = new JitHost()) {
                host.addListener(writer);
                List<JitObject> objects = new ArrayList<>();
                for (String fixture : fixtures) {
                    objects.add(JitFixtures.load(host, fixture));
                }
                List<JittedFile> files = jittedFiles(writer.path());
                PerfMemory memory = new PerfMemory(files);
                for (JitObject object : objects) {
                    var ehFrame = object.loaded().section(".eh_frame").orElseThrow();
                    MemorySegment original = MemorySegment.ofAddress(ehFrame.address()).reinterpret(ehFrame.size());
                    EhFrame loaded = EhFrame.parse(original, ehFrame.address());
                    Long sharedHeader = null;
                    for (EmittedFunction f : object.functions()) {
                        JittedFile file = files.get(checked++);
                        assertEquals(f.name(), file.name(), "loads in emission order");
                        assertEquals(f.address(), file.start(), f.name() + "'s code_addr");
                        assertEquals(f.size(), file.codeSize(), f.name() + "'s code_size");
                        assertTrue(file.hdrOffset() > 0, f.name() + " has an FDE and gets a JIT_CODE_UNWINDING_INFO record");
                        long header = file.address(file.hdrOffset());
                        if (sharedHeader == null) {
                            sharedHeader = header;
                        }
                        assertEquals(sharedHeader, header, f.name() + ": every function of " + object.name()
                                + " has its .eh_frame_hdr at the same address");
                        assertUnwindsThroughPerfsMemory(f, file, memory, loaded);
                    }
                }
                assertEquals(files.size(), checked, "a load per function");
            }
        }
        assertEquals(5 + 3 + 1 + 1, checked, "math, chain, data and debug's functions");
        writer.close();
    }

    @Test
    void aLastFunctionOffAnEightByteBoundaryLeavesTheSharedDataToTheOthers(@TempDir Path tmp) throws Exception {
        // chain-tail.o: chain.o's three functions, then chain_tail, minsize, packed right after
        // chain_top's code. Its own data, after its code, is the last mapping perf loads there.
        JitdumpWriter writer = JitdumpWriter.inDirectory(tmp);
        try (JitHost host = new JitHost()) {
            host.addListener(writer);
            JitObject object = JitFixtures.load(host, "chain-tail");
            List<EmittedFunction> functions = object.functions();
            assertEquals(List.of("chain_leaf", "chain_middle", "chain_top", "chain_tail"),
                    functions.stream().map(EmittedFunction::name).toList());
            EmittedFunction tail = functions.getLast();
            assertTrue((tail.address() & 7) != 0, "chain_tail at 0x" + Long.toHexString(tail.address()) + ", off an 8-byte boundary");
            List<JittedFile> files = jittedFiles(writer.path());
            assertEquals(functions.size(), files.size());
            PerfMemory memory = new PerfMemory(files);
            var ehFrame = object.loaded().section(".eh_frame").orElseThrow();
            EhFrame loaded = EhFrame.parse(MemorySegment.ofAddress(ehFrame.address()).reinterpret(ehFrame.size()), ehFrame.address());
            long sharedHeader = files.getFirst().address(files.getFirst().hdrOffset());
            for (int i = 0; i < functions.size(); i++) {
                EmittedFunction f = functions.get(i);
                JittedFile file = files.get(i);
                assertTrue(file.hdrOffset() > 0, f.name() + " gets a JIT_CODE_UNWINDING_INFO record");
                if (f != tail) {
                    assertEquals(sharedHeader, file.address(file.hdrOffset()), f.name() + ": the shared .eh_frame_hdr");
                }
                assertUnwindsThroughPerfsMemory(f, file, memory, loaded);
            }
            JittedFile tailFile = files.getLast();
            assertTrue(tailFile.address(tailFile.hdrOffset()) != sharedHeader, "chain_tail has its own header");
        }
        writer.close();
    }

    /**
     * What perf's libunwind unwinder does for a pc in {@code f}: the header's fde_count from the
     * function's own file; the table, then the FDE it names, through memory. The FDE must cover
     * exactly the function and give the object's CFI row at every byte.
     */
    private static void assertUnwindsThroughPerfsMemory(EmittedFunction f, JittedFile file, PerfMemory memory, EhFrame loaded)
            throws Exception {
        ByteBuffer own = ByteBuffer.wrap(file.file()).order(ByteOrder.LITTLE_ENDIAN);
        int h = (int) file.hdrOffset();
        assertEquals(1, own.get(h), f.name() + ": version");
        assertEquals(0x1b, own.get(h + 1), f.name() + ": eh_frame_ptr_enc");
        assertEquals(0x03, own.get(h + 2), f.name() + ": fde_count_enc");
        assertEquals(0x3b, own.get(h + 3), f.name() + ": table_enc");
        int count = own.getInt(h + 8);
        long segbase = file.address(h);
        long ehFrameAddress = segbase + 4 + memory.int32(segbase + 4);
        // The table, sorted by initial location, read through memory.
        long fdeAddress = 0;
        long previous = Long.MIN_VALUE;
        for (int i = 0; i < count; i++) {
            long start = segbase + memory.int32(segbase + 12 + 8L * i);
            assertTrue(start > previous, f.name() + ": table sorted");
            previous = start;
            if (start == f.address()) {
                fdeAddress = segbase + memory.int32(segbase + 16 + 8L * i);
            }
        }
        assertTrue(fdeAddress != 0, f.name() + ": the table read through perf's mappings has an entry for it");
        byte[] ehFrameBytes = memory.read(ehFrameAddress, Math.toIntExact(segbase - ehFrameAddress));
        EhFrame copy = EhFrame.parse(MemorySegment.ofArray(ehFrameBytes), ehFrameAddress);
        EhFrame.Fde fde = copy.fdeFor(f.address());
        assertTrue(fde != null, f.name() + ": an FDE covers it");
        assertEquals(fdeAddress, ehFrameAddress + fde.offset(), f.name() + ": the table's FDE");
        EhFrame.Fde expected = loaded.fdeFor(f.address());
        assertEquals(f.address(), fde.pcBegin(), f.name() + ": pc_begin, relative to where perf puts the section");
        assertEquals(expected.pcRange(), fde.pcRange(), f.name() + ": pc_range");
        // A copy needs readable memory for its program: the byte array is on the heap, so CfiRow
        // reads it through the parsed section.
        for (long pc = f.address(); pc < f.address() + f.size(); pc++) {
            assertEquals(CfiRow.at(loaded, expected, pc), CfiRow.at(copy, fde, pc), f.name() + " at +" + (pc - f.address()));
        }
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
    void perfMapKeepsTheLinesAlreadyThereAndRefusesToWriteOnceClosed(@TempDir Path tmp) throws Exception {
        Path map = tmp.resolve("perf-test.map");
        Files.writeString(map, "1000 10 earlier_run\n");
        try (JitHost host = new JitHost()) {
            PerfMapWriter writer = new PerfMapWriter(map);
            host.addListener(writer);
            JitObject math = JitFixtures.load(host, "math");
            writer.close();
            List<String> lines = Files.readAllLines(map);
            assertEquals("1000 10 earlier_run", lines.getFirst(), "a line already there is kept");
            assertEquals(1 + math.functions().size(), lines.size(), lines.toString());
            java.io.UncheckedIOException late = assertThrows(java.io.UncheckedIOException.class,
                    () -> writer.functionEmitted(math.functions().getFirst()), "a function after close");
            assertTrue(late.getMessage().contains(map.toString()), late.getMessage());
            assertEquals(lines, Files.readAllLines(map), "nothing written after close");
        }
    }

    @Test
    void jitdumpWritesNothingAfterCloseAndClosesOnce(@TempDir Path tmp) throws Exception {
        JitdumpWriter writer = JitdumpWriter.inDirectory(tmp);
        try (JitHost host = new JitHost()) {
            host.addListener(writer);
            JitObject math = JitFixtures.load(host, "math");
            writer.close();
            byte[] closed = Files.readAllBytes(writer.path());
            writer.functionEmitted(math.functions().getFirst());
            writer.close();
            assertArrayEquals(closed, Files.readAllBytes(writer.path()),
                    "no record after JIT_CODE_CLOSE, and no second JIT_CODE_CLOSE");
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
