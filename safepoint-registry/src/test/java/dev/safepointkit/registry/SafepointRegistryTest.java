package dev.safepointkit.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.stackmap.CallSiteRecord;
import dev.safepointkit.stackmap.FunctionRecord;
import dev.safepointkit.stackmap.LocationKind;
import dev.safepointkit.stackmap.ObjectStackMaps;
import dev.safepointkit.stackmap.StackMap;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.testing.EhFrameBuilder;
import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.Test;

class SafepointRegistryTest {

    static void hostPoll() {
    }

    @Test
    void registersWhatTheJitHostLoadsAndForgetsItOnUnload() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        Frame frame = new Frame();
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            host.addListener(new RegistryListener(registry));
            host.defineUpcall("host_poll", MethodHandles.lookup().findStatic(SafepointRegistryTest.class, "hostPoll",
                    MethodType.methodType(void.class)), FunctionDescriptor.ofVoid(), arena);
            JitObject object = host.load("safepoints.o", MemorySegment.ofArray(
                    Files.readAllBytes(Fixtures.projectRoot().resolve("fixtures/jit/x86_64/safepoints.o"))));
            assertEquals(1, registry.objectCount());
            assertEquals(3, registry.safepointCount());
            StackMap map = object.loaded().stackMaps().orElseThrow().stackMaps().getFirst();
            for (EmittedFunction fn : object.functions()) {
                FunctionRecord record = null;
                for (int f = 0; f < map.functionCount(); f++) {
                    if (map.function(f).functionAddress() == fn.address()) {
                        record = map.function(f);
                    }
                }
                for (int i = 0; i < fn.stackMapRecords().size(); i++) {
                    CallSiteRecord r = fn.stackMapRecords().get(i);
                    assertTrue(registry.lookup(fn.stackMapAddress(i), frame));
                    assertEquals(object.key(), frame.objectKey());
                    assertEquals(fn.name(), frame.functionName());
                    assertEquals(fn.address(), frame.functionStart());
                    assertEquals(fn.size(), frame.functionSize());
                    assertEquals(record.stackSize(), frame.frameSize());
                    assertEquals(r.id(), frame.safepointId());
                    assertEquals(fn.stackMapAddress(i), frame.returnAddress());
                }
            }
            // polls: a statepoint with its one pointer; mapped: plain stack maps with live values.
            EmittedFunction polls = object.functions().get(1);
            assertTrue(registry.lookup(polls.stackMapAddress(0), frame));
            assertEquals(SafepointKind.STATEPOINT, frame.kind());
            assertEquals(1, frame.pairCount());
            assertEquals(frame.offset(frame.base(0)), frame.offset(frame.derived(0)));
            EmittedFunction mapped = object.functions().get(0);
            assertTrue(registry.lookup(mapped.stackMapAddress(0), frame));
            assertEquals(SafepointKind.STACKMAP, frame.kind());
            assertEquals(2, frame.liveCount());
            // Any pc in the code: which object, which function.
            assertTrue(registry.locate(mapped.address() + 1, frame));
            assertEquals("mapped", frame.functionName());
            assertFalse(frame.hasSafepoint());
            assertFalse(registry.lookup(mapped.address() + 1, frame), "not a return address");

            long pollSite = polls.stackMapAddress(0);
            host.unload(object, false);
            assertEquals(0, registry.objectCount());
            assertFalse(registry.lookup(pollSite, frame));
            assertFalse(registry.locate(mapped.address() + 1, frame));
        }
    }

    @Test
    void decodesBothStackMapsOfALinkedFile() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            ElfFile elf = ElfFile.parse(Fixtures.map(Fixtures.stackMapFixtures().resolve("linked/x86_64/libpair.so"), arena));
            ObjectStackMaps maps = ObjectStackMaps.read(elf).orElseThrow();
            ElfSection text = elf.findSection(".text").orElseThrow();
            SafepointRegistry registry = new SafepointRegistry();
            registry.register(1, "libpair.so", text.address(), text.size(), maps.stackMaps(), List.of());
            assertEquals(maps.stackMaps().recordCount(), registry.safepointCount());
            Frame frame = new Frame();
            for (StackMap map : maps.stackMaps().stackMaps()) {
                for (int f = 0; f < map.functionCount(); f++) {
                    FunctionRecord fn = map.function(f);
                    for (int r = 0; r < fn.recordCount(); r++) {
                        CallSiteRecord record = fn.record(r);
                        assertTrue(registry.lookup(fn.functionAddress() + record.instructionOffset(), frame));
                        assertEquals(record.id(), frame.safepointId());
                        assertEquals(fn.stackSize(), frame.frameSize());
                        assertNull(frame.functionName(), "no symbols were given");
                    }
                }
            }
            // deopt_and_base's statepoint: deopt values decoded, the large one from the constants table.
            assertTrue(registry.lookup(lookupAddress(maps.stackMaps(), 2882400000L), frame));
            assertEquals(3, frame.deoptCount());
            assertEquals(-5, frame.constant(frame.deopt(1)));
            assertEquals(LocationKind.CONSTANT_INDEX, frame.kind(frame.deopt(2)));
            assertEquals(6442450944L, frame.constant(frame.deopt(2)));
        }
    }

    private static long lookupAddress(StackMapSection section, long id) {
        for (StackMap map : section.stackMaps()) {
            for (int r = 0; r < map.recordCount(); r++) {
                if (map.record(r).id() == id) {
                    return map.function(map.functionOfRecord(r)).functionAddress() + map.record(r).instructionOffset();
                }
            }
        }
        throw new AssertionError("no record " + id);
    }

    static StackMapSection section(long functionAddress, long stackSize, long... offsets) throws Exception {
        StackMapBuilder b = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(functionAddress, stackSize, offsets.length);
        // The roots are slots of the frame: registration refuses any beyond a static frame size.
        int slots = stackSize >= 0 ? (int) (stackSize / 8) : Integer.MAX_VALUE;
        for (int i = 0; i < offsets.length; i++) {
            b.record(1000 + i, offsets[i]).constant(0).constant(0).constant(0).indirect(7, 8 * (i % slots))
                    .indirect(7, 8 * (i % slots)).direct(7, stackSize >= 0 ? (int) stackSize - 8 : 64);
        }
        return StackMapSection.parse(MemorySegment.ofArray(b.build()), ByteOrder.LITTLE_ENDIAN);
    }

    @Test
    void dynamicFrameSizesAndGcAllocas() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        registry.register(7, "dyn", 0x10000, 0x100, section(0x10000, -1L, 0x10, 0x20),
                List.of(new FunctionSpan("dyn_fn", 0x10000, 0x80)));
        Frame frame = new Frame();
        assertTrue(registry.lookup(0x10020, frame));
        assertTrue(frame.hasDynamicFrameSize());
        assertEquals(1, frame.pairCount());
        assertEquals(1, frame.gcAllocaCount());
        assertEquals(LocationKind.DIRECT, frame.kind(frame.gcAlloca(0)));
        assertEquals(64, frame.offset(frame.gcAlloca(0)));
        assertEquals(8, frame.offset(frame.base(0)));
        assertTrue(registry.locate(0x100f0, frame), "inside the code");
        assertFalse(frame.hasFunction(), "past dyn_fn's 0x80 bytes");
    }

    @Test
    void refusesOverlapAndDuplicateKeysAndChangesNothing() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        registry.register(1, "a", 0x1000, 0x100, section(0x1000, 16, 0x10), List.of());
        registry.register(2, "b", 0x1100, 0x100, section(0x1100, 16, 0x10), List.of());
        RegistryException e = assertThrows(RegistryException.class,
                () -> registry.register(3, "c", 0x10f0, 0x20, section(0x10f0, 16, 0x8), List.of()));
        assertTrue(e.getMessage().startsWith("c: code [0x10f0, 0x1110) overlaps registered object "), e.getMessage());
        assertThrows(RegistryException.class, () -> registry.register(4, "d", 0x0f80, 0x100, null, List.of()));
        assertThrows(RegistryException.class, () -> registry.register(5, "e", 0x1000, 0x200, null, List.of()));
        assertTrue(assertThrows(RegistryException.class, () -> registry.register(2, "b2", 0x9000, 0x10, null, List.of()))
                .getMessage().contains("key 2 is already registered"));
        assertTrue(assertThrows(RegistryException.class,
                () -> registry.register(6, "f", 0x5000, 0x10, section(0x5000, 16, 0x40), List.of()))
                .getMessage().contains("lies outside the code"));
        assertEquals(2, registry.objectCount());
        assertEquals(2, registry.safepointCount());
        registry.register(9, "adjacent", 0x1200, 0x10, null, List.of());
        assertEquals(3, registry.objectCount());
    }

    @Test
    void refusesAnEmptyCodeRangeAndTwoRecordsAtOneReturnAddressAndChangesNothing() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        assertEquals("g: empty code range", assertThrows(RegistryException.class,
                () -> registry.register(1, "g", 0x7000, 0, null, List.of())).getMessage());
        assertEquals("g: empty code range", assertThrows(RegistryException.class,
                () -> registry.register(1, "g", 0x7000, -16, null, List.of())).getMessage());
        // Two records at 0x6010: a return address names one safepoint, or the walk could read the wrong roots.
        RegistryException twice = assertThrows(RegistryException.class,
                () -> registry.register(2, "h", 0x6000, 0x100, section(0x6000, 16, 0x10, 0x20, 0x10), List.of()));
        assertTrue(twice.getMessage().startsWith("h: two stack map records share the return address 0x6010"), twice.getMessage());
        assertEquals(0, registry.objectCount());
        assertEquals(0, registry.safepointCount());
        assertFalse(registry.lookup(0x6010, new Frame()));
        assertFalse(registry.locate(0x6010, new Frame()));
    }

    @Test
    void withItsEhFrameASafepointWithoutAnFdeOrWithAnSpRelativeCfaInADynamicFrameIsRefused() throws Exception {
        long f = 0x4000_0000L;
        List<FunctionSpan> fn = List.of(new FunctionSpan("fn", f, 0x100));
        SafepointRegistry registry = new SafepointRegistry();
        try (Arena arena = Arena.ofConfined()) {
            EhFrame none = new EhFrameBuilder().cie().parse(arena);
            RegistryException noFde = assertThrows(RegistryException.class,
                    () -> registry.register(1, "nofde", f, 0x100, section(f, 16, 0x10), fn, none));
            assertEquals("nofde: the safepoint at 0x40000010 in fn has no FDE in the object's .eh_frame", noFde.getMessage());
            // CFA = RSP + 8 all through fn: a frame whose size is not known cannot be stepped over that way.
            EhFrame spRelative = new EhFrameBuilder().cie().fde(f, 0x100, EhFrameBuilder.bytes()).parse(arena);
            RegistryException dynamic = assertThrows(RegistryException.class,
                    () -> registry.register(2, "dyn", f, 0x100, section(f, -1L, 0x10), fn, spRelative));
            assertTrue(dynamic.getMessage().startsWith("dyn: the safepoint at 0x40000010 in fn: its stack map says the frame size"
                    + " is dynamic, but its CFI is SP-relative ("), dynamic.getMessage());
            assertEquals(0, registry.objectCount());
            // The same function with CFA = RSP + 24 and a static frame of 16 bytes agrees, and registers.
            EhFrame agreeing = new EhFrameBuilder().cie().fde(f, 0x100, EhFrameBuilder.bytes(0x0e, 24)).parse(arena);
            registry.register(3, "ok", f, 0x100, section(f, 16, 0x10), fn, agreeing);
            Frame frame = new Frame();
            assertTrue(registry.lookup(f + 0x10, frame));
            assertEquals(16, frame.frameSize());
        }
    }

    @Test
    void codeReusedAtTheSameAddressesIsFoundWithItsOwnFields() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        Frame frame = new Frame();
        registry.register(1_000_000, "neighbour", 0x9000, 0x100, section(0x9000, 16, 0x10), List.of());
        for (int round = 0; round < 3000; round++) {
            long stack = 16 + 16L * (round % 7);
            registry.register(round, "round-" + round, 0x3000, 0x100, section(0x3000, stack, 0x10, 0x30), List.of());
            assertTrue(registry.lookup(0x3030, frame));
            assertEquals(round, frame.objectKey());
            assertEquals(stack, frame.frameSize());
            assertTrue(registry.unregister(round));
            assertFalse(registry.lookup(0x3030, frame));
        }
        assertTrue(registry.lookup(0x9010, frame), "other objects survive the rebuilds");
        assertEquals(1_000_000, frame.objectKey());
        assertEquals(1, registry.objectCount());
    }

    @Test
    void aFrameStaysValidAfterItsObjectIsUnregistered() throws Exception {
        SafepointRegistry registry = new SafepointRegistry();
        registry.register(1, "gone", 0x2000, 0x100, section(0x2000, 48, 0x10), List.of(new FunctionSpan("g", 0x2000, 0x100)));
        Frame frame = new Frame();
        assertTrue(registry.lookup(0x2010, frame));
        assertTrue(registry.unregister(1));
        assertFalse(registry.unregister(1));
        assertFalse(registry.lookup(0x2010, new Frame()));
        assertEquals(48, frame.frameSize());
        assertEquals("g", frame.functionName());
        assertEquals(1000, frame.safepointId());
    }
}
