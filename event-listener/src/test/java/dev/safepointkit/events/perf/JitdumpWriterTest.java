package dev.safepointkit.events.perf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventDispatcher;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.events.SourceLine;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The writer's reports for objects its unwinding layout cannot serve, on made-up objects whose
 * code and {@code .eh_frame} lie in native memory (the writer reads the section where it is
 * mapped), and the file it writes when several threads emit at once. PerfListenersTest (jit-host)
 * checks real loaded objects.
 */
class JitdumpWriterTest {
    private static final long PAGE = 4096;
    /** Call frame instructions: the CIE's (def_cfa rsp+8, rip at cfa-8), then each FDE's (advance 1, cfa offset 16). */
    private static final MemorySegment CFI = MemorySegment.ofArray(new byte[] {0x0c, 0x07, 0x08, (byte) 0x90, 0x01, 0x41, 0x0e, 0x10});
    private static final EhFrame.Cie CIE = new EhFrame.Cie(0, 1, -8, 16, 0x1b, 0xff, true, false, 0, 5);
    private static final long[] STARTS = {0, 0x40, 0x80};
    private static final long[] SIZES = {0x39, 0x33, 0x0b};

    /** One record after the file header: its id and its bytes after the 16-byte record header. */
    record Record(int id, ByteBuffer body) {
    }

    static List<Record> records(Path jitdump) throws Exception {
        ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(jitdump)).order(ByteOrder.nativeOrder());
        in.position(JitdumpWriter.HEADER_SIZE);
        List<Record> records = new ArrayList<>();
        while (in.hasRemaining()) {
            int start = in.position();
            int id = in.getInt();
            int total = in.getInt();
            records.add(new Record(id, in.slice(start + 16, total - 16).order(ByteOrder.nativeOrder())));
            in.position(start + total);
        }
        return records;
    }

    /** Three functions in a page of code at {@code base}, the object's {@code .eh_frame} (these bytes) on the next page. */
    private static LoadedObject object(MemorySegment base, byte[] ehFrame) {
        MemorySegment section = base.asSlice(PAGE, ehFrame.length);
        section.copyFrom(MemorySegment.ofArray(ehFrame));
        return new LoadedObject(1, "made-up.o", List.of(new LoadedSection(".text", base.address(), 0x8b, true, false),
                new LoadedSection(".eh_frame", section.address(), ehFrame.length, false, false)),
                List.of(), Optional.empty(), Optional.empty());
    }

    /** An {@code .eh_frame} at {@code at} with an FDE for each of the three functions at {@code text}. */
    private static byte[] ehFrame(long text, long at) {
        EhFrame.Fde[] fdes = new EhFrame.Fde[STARTS.length];
        for (int i = 0; i < STARTS.length; i++) {
            fdes[i] = new EhFrame.Fde(0x18 + 0x18L * i, CIE, text + STARTS[i], SIZES[i], 5, 8);
        }
        JitdumpUnwinding.Data data = JitdumpUnwinding.ehFrameAndHeader(CFI, List.of(fdes), at);
        return Arrays.copyOf(data.bytes(), data.bytes().length - data.hdrSize());
    }

    private static EmittedFunction function(LoadedObject object, MemorySegment base, int i) {
        return new EmittedFunction("f" + i, base.address() + STARTS[i], SIZES[i], object, Map.of(), List.of(),
                base.asSlice(STARTS[i], SIZES[i]));
    }

    /** The unwinding data of each JIT_CODE_UNWINDING_INFO, by the name of the JIT_CODE_LOAD after it (null: none). */
    private static List<byte[]> unwindingByLoad(Path jitdump) throws Exception {
        List<byte[]> out = new ArrayList<>();
        byte[] pending = null;
        for (Record r : records(jitdump)) {
            if (r.id() == JitdumpWriter.JIT_CODE_UNWINDING_INFO) {
                pending = new byte[Math.toIntExact(r.body().getLong(0))];
                r.body().get(JitdumpWriter.UNWINDING_INFO_FIELDS, pending);
            } else if (r.id() == JitdumpWriter.JIT_CODE_LOAD) {
                out.add(pending);
                pending = null;
            }
        }
        return out;
    }

    @Test
    void aFunctionBelowOneEmittedBeforeItFallsBackAndIsReportedOnce(@TempDir Path tmp) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment base = arena.allocate(2 * PAGE, PAGE);
            LoadedObject object = object(base, ehFrame(base.address(), base.address() + PAGE));
            MemorySegment section = base.asSlice(PAGE, object.section(".eh_frame").orElseThrow().size());
            EhFrame parsed = EhFrame.parse(section, section.address());
            JitdumpUnwinding.ObjectLayout layout = JitdumpUnwinding.objectLayout(object, section, parsed.fdes(), PAGE,
                    JitdumpUnwinding.PADDING_BUDGET);
            assertNotNull(layout);

            List<String> failures = new CopyOnWriteArrayList<>();
            JitdumpWriter writer = new JitdumpWriter(tmp.resolve("jit-1.dump"));
            JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, failure) -> failures.add(event + ": " + failure.getMessage()));
            dispatcher.add(writer);
            // f1, then f0 below it, then f2 above both.
            for (int i : new int[] {1, 0, 2}) {
                dispatcher.functionEmitted(function(object, base, i));
            }
            writer.close();

            List<byte[]> unwinding = unwindingByLoad(writer.path());
            assertEquals(3, unwinding.size(), "every function's JIT_CODE_LOAD");
            assertArrayEquals(layout.forFunction(base.address() + STARTS[1], SIZES[1]).bytes(), unwinding.get(0),
                    "f1, first, gets the shared layout");
            for (int k : new int[] {1, 2}) {
                int i = k == 1 ? 0 : 2;
                assertArrayEquals(JitdumpUnwinding.build(section, parsed.fdes().get(i), SIZES[i]).bytes(), unwinding.get(k),
                        "f" + i + ", from f0 on (f0 came out of order), gets its own FDE alone");
            }
            assertEquals(1, failures.size(), failures::toString);
            assertTrue(failures.get(0).startsWith("functionEmitted: made-up.o: f0 at 0x") && failures.get(0).contains("ascending"),
                    failures.get(0));
        }
    }

    @Test
    void functionsInAddressOrderAllGetTheSharedLayoutWithoutAReport(@TempDir Path tmp) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment base = arena.allocate(2 * PAGE, PAGE);
            LoadedObject object = object(base, ehFrame(base.address(), base.address() + PAGE));
            List<String> failures = new CopyOnWriteArrayList<>();
            JitdumpWriter writer = new JitdumpWriter(tmp.resolve("jit-1.dump"));
            JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, failure) -> failures.add(event + ": " + failure.getMessage()));
            dispatcher.add(writer);
            for (int i = 0; i < 3; i++) {
                dispatcher.functionEmitted(function(object, base, i));
            }
            writer.close();
            MemorySegment section = base.asSlice(PAGE, object.section(".eh_frame").orElseThrow().size());
            JitdumpUnwinding.ObjectLayout layout = JitdumpUnwinding.objectLayout(object, section,
                    EhFrame.parse(section, section.address()).fdes(), PAGE, JitdumpUnwinding.PADDING_BUDGET);
            List<byte[]> unwinding = unwindingByLoad(writer.path());
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(layout.forFunction(base.address() + STARTS[i], SIZES[i]).bytes(), unwinding.get(i),
                        "f" + i + " gets the padding and the shared data");
            }
            assertEquals(List.of(), failures);
        }
    }

    @Test
    void anUnreadableEhFrameStillWritesEveryLoadAndIsReportedOnce(@TempDir Path tmp) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment base = arena.allocate(2 * PAGE, PAGE);
            // A CIE of version 7, which no .eh_frame has.
            byte[] bad = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(12).putInt(0).put((byte) 7).array();
            LoadedObject object = object(base, bad);
            List<String> failures = new CopyOnWriteArrayList<>();
            JitdumpWriter writer = new JitdumpWriter(tmp.resolve("jit-1.dump"));
            JitEventDispatcher dispatcher = new JitEventDispatcher((l, event, failure) -> failures.add(event + ": " + failure.getMessage()));
            dispatcher.add(writer);
            for (int i = 0; i < 3; i++) {
                dispatcher.functionEmitted(function(object, base, i));
            }
            writer.close();
            List<Record> records = records(writer.path());
            assertEquals(3, records.stream().filter(r -> r.id() == JitdumpWriter.JIT_CODE_LOAD).count(),
                    "every function's JIT_CODE_LOAD, the first one's too");
            assertEquals(0, records.stream().filter(r -> r.id() == JitdumpWriter.JIT_CODE_UNWINDING_INFO).count());
            ByteBuffer first = records.getFirst().body();
            assertEquals(JitdumpWriter.JIT_CODE_LOAD, records.getFirst().id());
            assertEquals(base.address(), first.getLong(16), "the first load is f0's");
            assertArrayEquals(base.asSlice(0, SIZES[0]).toArray(ValueLayout.JAVA_BYTE),
                    Arrays.copyOfRange(first.array(), first.arrayOffset() + first.limit() - (int) SIZES[0], first.arrayOffset() + first.limit()));
            assertEquals(1, failures.size(), failures::toString);
            assertTrue(failures.get(0).startsWith("functionEmitted: no JIT_CODE_UNWINDING_INFO for made-up.o: its .eh_frame cannot be read"),
                    failures.get(0));
        }
    }

    @Test
    void recordsWrittenFromManyThreadsAtOnceAreEachWholeAndApart(@TempDir Path tmp) throws Throwable {
        int threads = 4;
        int perThread = 1500;
        JitdumpWriter writer = new JitdumpWriter(tmp.resolve("jit-1.dump"));
        List<Throwable> thrown = new CopyOnWriteArrayList<>();
        int[] tids = new int[threads];
        java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(threads);
        List<Thread> running = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int k = t;
            running.add(Thread.ofPlatform().name("emitter-" + k).start(() -> {
                try {
                    tids[k] = dev.safepointkit.events.internal.Libc.gettid();
                    LoadedObject object = new LoadedObject(k, "t" + k + ".o", List.of(), List.of(), Optional.empty(), Optional.empty());
                    start.await(60, java.util.concurrent.TimeUnit.SECONDS);
                    for (int i = 0; i < perThread; i++) {
                        writer.functionEmitted(madeUp(object, k, i));
                    }
                } catch (Throwable e) {
                    thrown.add(e);
                }
            }));
        }
        for (Thread thread : running) {
            assertTrue(thread.join(java.time.Duration.ofSeconds(120)), thread.getName() + " did not end");
        }
        writer.close();
        if (!thrown.isEmpty()) {
            Throwable first = thrown.getFirst();
            thrown.stream().skip(1).forEach(first::addSuppressed);
            throw first;
        }

        ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(writer.path())).order(ByteOrder.nativeOrder());
        assertEquals(JitdumpWriter.MAGIC, in.getInt(0));
        assertEquals(JitdumpWriter.VERSION, in.getInt(4));
        assertEquals(JitdumpWriter.HEADER_SIZE, in.getInt(8));
        assertEquals((int) ProcessHandle.current().pid(), in.getInt(20));
        int at = JitdumpWriter.HEADER_SIZE;
        int loads = 0;
        int closes = 0;
        int[] next = new int[threads];
        // The address of the JIT_CODE_DEBUG_INFO just read, which the next record must load.
        Long debugFor = null;
        while (at < in.limit()) {
            assertTrue(in.limit() - at >= JitdumpWriter.RECORD_HEADER_SIZE, "a record header at " + at + " runs past the end");
            assertEquals(0, closes, "nothing after JIT_CODE_CLOSE, at " + at);
            int id = in.getInt(at);
            int total = in.getInt(at + 4);
            assertTrue(total >= JitdumpWriter.RECORD_HEADER_SIZE && total <= in.limit() - at,
                    "record at " + at + " (id " + id + ") has total_size " + total + " with " + (in.limit() - at) + " bytes left");
            ByteBuffer body = in.slice(at + 16, total - 16).order(ByteOrder.nativeOrder());
            switch (id) {
                case JitdumpWriter.JIT_CODE_DEBUG_INFO -> {
                    assertEquals(null, debugFor, "two JIT_CODE_DEBUG_INFO in a row at " + at);
                    long address = body.getLong(0);
                    int k = (int) (address >>> 32);
                    int i = (int) ((address & 0xFFFF_FFFFL) >>> 8);
                    List<SourceLine> lines = madeUpLines(address, k, i);
                    assertEquals(lines.size(), body.getLong(8), "nr_entry at " + at);
                    int p = JitdumpWriter.DEBUG_INFO_FIELDS;
                    for (SourceLine line : lines) {
                        assertEquals(line.address(), body.getLong(p), "entry address at " + at);
                        assertEquals(line.line(), body.getInt(p + 8));
                        assertEquals(line.discriminator(), body.getInt(p + 12));
                        byte[] name = (line.file() + "\0").getBytes(StandardCharsets.UTF_8);
                        byte[] read = new byte[name.length];
                        body.get(p + JitdumpWriter.DEBUG_ENTRY_FIELDS, read);
                        assertArrayEquals(name, read, "entry file name at " + at);
                        p += JitdumpWriter.DEBUG_ENTRY_FIELDS + name.length;
                    }
                    assertEquals(body.limit(), p, "the entries fill the record at " + at);
                    debugFor = address;
                }
                case JitdumpWriter.JIT_CODE_LOAD -> {
                    long address = body.getLong(8);
                    int k = (int) (address >>> 32);
                    int i = (int) ((address & 0xFFFF_FFFFL) >>> 8);
                    assertTrue(k >= 0 && k < threads, "load of 0x" + Long.toHexString(address) + " at " + at);
                    assertEquals(next[k], i, "thread " + k + "'s functions in the order it emitted them, at " + at);
                    next[k]++;
                    if (i % 4 != 0) {
                        assertEquals(address, debugFor, "the JIT_CODE_DEBUG_INFO right before the load of t" + k + "_f" + i + " at " + at);
                    } else {
                        assertEquals(null, debugFor, "a function without lines has no JIT_CODE_DEBUG_INFO before it, at " + at);
                    }
                    debugFor = null;
                    assertEquals((int) ProcessHandle.current().pid(), body.getInt(0));
                    assertEquals(tids[k], body.getInt(4), "the tid of the thread that emitted t" + k + "_f" + i);
                    assertEquals(address, body.getLong(16), "code_addr");
                    byte[] code = madeUpCode(k, i);
                    assertEquals(code.length, body.getLong(24), "code_size at " + at);
                    assertEquals(loads, body.getLong(32), "code_index counts the loads in file order, at " + at);
                    byte[] name = ("t" + k + "_f" + i + "\0").getBytes(StandardCharsets.UTF_8);
                    assertEquals(16 + 40 + name.length + code.length, total, "total_size of t" + k + "_f" + i);
                    byte[] readName = new byte[name.length];
                    body.get(40, readName);
                    assertArrayEquals(name, readName, "name at " + at);
                    byte[] readCode = new byte[code.length];
                    body.get(40 + name.length, readCode);
                    assertArrayEquals(code, readCode, "code of t" + k + "_f" + i);
                    loads++;
                }
                case JitdumpWriter.JIT_CODE_CLOSE -> {
                    assertEquals(JitdumpWriter.RECORD_HEADER_SIZE, total);
                    closes++;
                }
                default -> org.junit.jupiter.api.Assertions.fail("record id " + id + " at " + at);
            }
            at += total;
        }
        assertEquals(in.limit(), at, "the records' sizes add up to the file's");
        assertEquals(null, debugFor, "a JIT_CODE_DEBUG_INFO with no load after it");
        assertEquals(threads * perThread, loads, "every function's JIT_CODE_LOAD");
        assertEquals(1, closes, "one JIT_CODE_CLOSE, last");
        for (int k = 0; k < threads; k++) {
            assertEquals(perThread, next[k], "thread " + k + "'s loads");
        }
    }

    /** Function {@code i} of thread {@code k}: its address says which (k in the high half, i from bit 8). */
    private static EmittedFunction madeUp(LoadedObject object, int k, int i) {
        long address = ((long) k << 32) | ((long) i << 8);
        byte[] code = madeUpCode(k, i);
        return new EmittedFunction("t" + k + "_f" + i, address, code.length, object, Map.of(), List.of(),
                MemorySegment.ofArray(code), madeUpLines(address, k, i));
    }

    /** 1 to 200 bytes, each one the thread's and function's. */
    private static byte[] madeUpCode(int k, int i) {
        byte[] code = new byte[1 + (i * 37 + k * 11) % 200];
        Arrays.fill(code, (byte) (k * 64 + i));
        return code;
    }

    /** None for every fourth function, else 1 to 5 lines in a file named for the thread. */
    private static List<SourceLine> madeUpLines(long address, int k, int i) {
        List<SourceLine> lines = new ArrayList<>();
        for (int j = 0; i % 4 != 0 && j < 1 + i % 5; j++) {
            lines.add(new SourceLine(address + j, "dir" + k + "/source-of-thread-" + k + ".c", i * 10 + j, j));
        }
        return lines;
    }
}
