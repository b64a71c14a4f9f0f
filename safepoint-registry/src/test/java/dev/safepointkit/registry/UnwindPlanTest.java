package dev.safepointkit.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.stackmap.dwarf.CfiRow;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.testing.EhFrameBuilder;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteOrder;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/** Unwind plans made at registration from real objects' {@code .eh_frame}, and the loads they refuse. */
class UnwindPlanTest {
    static void hostPoll() {
    }

    private static byte[] fixture(String name) throws Exception {
        return Files.readAllBytes(Fixtures.projectRoot().resolve("fixtures/jit/x86_64/" + name));
    }

    private static JitHost host(SafepointRegistry registry, Arena arena) throws Exception {
        JitHost host = new JitHost();
        host.addListener(new RegistryListener(registry));
        // Only linked, never called: any signature does.
        for (String name : new String[] {"host_poll", "deep_poll_java", "gc_poll_java", "record_entry"}) {
            host.defineUpcall(name, MethodHandles.lookup().findStatic(UnwindPlanTest.class, "hostPoll",
                    MethodType.methodType(void.class)), FunctionDescriptor.ofVoid(), arena);
        }
        return host;
    }

    @Test
    void everySafepointOfALoadedObjectHasThePlanOfItsCall() throws Exception {
        int planned = 0;
        for (String name : new String[] {"deep-fp.o", "deep.o", "roots.o", "roots-gcregs.o", "safepoints.o"}) {
            SafepointRegistry registry = new SafepointRegistry();
            try (Arena arena = Arena.ofShared(); JitHost host = host(registry, arena)) {
                host.load(name, MemorySegment.ofArray(fixture(name)));
                Frame frame = new Frame();
                for (ObjectTable t : registry.tablesForTest()) {
                    for (int i = 0; i < t.safepointCount(); i++) {
                        assertTrue(registry.lookup(t.spAddress[i], frame));
                        long plan = frame.unwindPlan();
                        String where = name + " 0x" + Long.toHexString(t.spAddress[i]) + ": " + UnwindPlan.describe(plan);
                        assertTrue(UnwindPlan.present(plan), where);
                        if (frame.hasDynamicFrameSize() || UnwindPlan.cfaRegister(plan) == UnwindPlan.RBP) {
                            assertEquals(UnwindPlan.RBP, UnwindPlan.cfaRegister(plan), where);
                            assertEquals(16, UnwindPlan.cfaOffset(plan), where);
                            assertEquals(2, UnwindPlan.saved(plan, UnwindPlan.slotOf(UnwindPlan.RBP)), where);
                        } else {
                            assertEquals(frame.frameSize() + 8, UnwindPlan.cfaOffset(plan), where);
                        }
                        planned++;
                    }
                }
            }
        }
        assertTrue(planned >= 10, planned + " safepoints");
    }

    /** The row at the end of a 256-byte function whose FDE runs {@code program}. */
    private static CfiRow rowAfter(byte[] program) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            EhFrame eh = new EhFrameBuilder().cie().fde(0x1000, 256, program).parse(arena);
            return CfiRow.at(eh, eh.fdeFor(0x1000), 0x10ff);
        }
    }

    @Test
    void theCodecKeepsEveryField() throws Exception {
        byte[] b = {0x41, 0x0e, 16, (byte) 0x86, 2, 0x41, 0x0e, 24, (byte) 0x83, 3, (byte) 0x8f, 4, 0x07, 13};
        long plan = UnwindPlan.encode(rowAfter(b));
        assertEquals(UnwindPlan.RSP, UnwindPlan.cfaRegister(plan));
        assertEquals(24, UnwindPlan.cfaOffset(plan));
        assertEquals(3, UnwindPlan.saved(plan, UnwindPlan.slotOf(3)));
        assertEquals(2, UnwindPlan.saved(plan, UnwindPlan.slotOf(6)));
        assertEquals(0, UnwindPlan.saved(plan, UnwindPlan.slotOf(12)));
        assertEquals(UnwindPlan.UNDEFINED, UnwindPlan.saved(plan, UnwindPlan.slotOf(13)));
        assertEquals(0, UnwindPlan.saved(plan, UnwindPlan.slotOf(14)));
        assertEquals(4, UnwindPlan.saved(plan, UnwindPlan.slotOf(15)));
        assertEquals("CFA=RSP+24 R#3=[CFA-24] R#6=[CFA-16] R#13=undefined R#15=[CFA-32]", UnwindPlan.describe(plan));
        // A CFA on RBX and a callee-saved register above the CFA cannot be planned.
        assertThrows(IllegalArgumentException.class, () -> UnwindPlan.encode(rowAfter(new byte[] {0x0c, 3, 8})));
        assertThrows(IllegalArgumentException.class, () -> UnwindPlan.encode(rowAfter(new byte[] {0x11, 3, 0x7f})));
    }

    @Test
    void aSafepointWhoseCfiCannotBeEvaluatedRefusesTheLoadNamingFunctionAndPc() throws Exception {
        byte[] bad = fixture("safepoints.o");
        try (Arena scratch = Arena.ofConfined()) {
            ElfFile elf = ElfFile.parse(MemorySegment.ofArray(bad));
            ElfSection eh = elf.findSection(".eh_frame").orElseThrow();
            // Each FDE begins with DW_CFA_advance_loc 1, DW_CFA_def_cfa_offset 16 (3 bytes): they become
            // DW_CFA_def_cfa RBX+16, a rule libgcc can follow (so the host registers it) and a plan
            // cannot express. (A DWARF expression would be refused by the host before the registry sees it.)
            for (EhFrame.Fde fde : EhFrame.parse(elf.contents(eh), 0).fdes()) {
                int at = (int) (eh.offset() + fde.instructions());
                assertEquals(0x41, bad[at]);
                assertEquals(0x0e, bad[at + 1]);
                bad[at] = 0x0c;
                bad[at + 1] = 3;
                bad[at + 2] = 16;
            }
        }
        SafepointRegistry registry = new SafepointRegistry();
        try (Arena arena = Arena.ofShared(); JitHost host = host(registry, arena)) {
            long mappings = JitHost.liveMappings();
            JitLoadException e = assertThrows(JitLoadException.class, () -> host.load("bad.o", MemorySegment.ofArray(bad)));
            assertTrue(e.getMessage().contains("bad.o: the safepoint at 0x"), e.getMessage());
            assertTrue(e.getMessage().contains(" in polls: its CFI cannot be planned: "), e.getMessage());
            assertTrue(e.getMessage().contains("CFA is based on R#3; only RSP and RBP are supported"), e.getMessage());
            assertEquals(0, registry.objectCount());
            assertEquals(mappings, JitHost.liveMappings(), "nothing left mapped");
        }
    }

    @Test
    void aFrameSizeTheCfiContradictsRefusesTheLoad() throws Exception {
        byte[] bad = fixture("safepoints.o");
        ElfFile elf = ElfFile.parse(MemorySegment.ofArray(bad));
        ElfSection maps = elf.findSection(".llvm_stackmaps").orElseThrow();
        MemorySegment map = MemorySegment.ofArray(bad).asSlice(maps.offset(), maps.size());
        ValueLayout.OfLong u64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        int functions = map.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4);
        for (int f = 0; f < functions; f++) {
            long stackSize = 16 + 24L * f + 8;   // StkSizeRecord[f].StackSize
            map.set(u64, stackSize, map.get(u64, stackSize) + 16);
        }
        SafepointRegistry registry = new SafepointRegistry();
        try (Arena arena = Arena.ofShared(); JitHost host = host(registry, arena)) {
            JitLoadException e = assertThrows(JitLoadException.class, () -> host.load("bad.o", MemorySegment.ofArray(bad)));
            assertTrue(e.getMessage().contains("but its stack map's frame size"), e.getMessage());
            assertEquals(0, registry.objectCount());
        }
    }
}
