package dev.safepointkit.host;

import static dev.safepointkit.host.ObjectEditor.Field.R_ADDEND;
import static dev.safepointkit.host.ObjectEditor.Field.R_OFFSET;
import static dev.safepointkit.host.ObjectEditor.Field.SH_ADDRALIGN;
import static dev.safepointkit.host.ObjectEditor.Field.SH_SIZE;
import static dev.safepointkit.host.ObjectEditor.Field.SH_TYPE;
import static dev.safepointkit.host.ObjectEditor.Field.ST_INFO;
import static dev.safepointkit.host.ObjectEditor.Field.ST_NAME;
import static dev.safepointkit.host.ObjectEditor.Field.ST_SHNDX;
import static dev.safepointkit.host.ObjectEditor.Field.ST_SIZE;
import static dev.safepointkit.host.ObjectEditor.Field.ST_VALUE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Corrupt copies of the fixture objects, one field changed each, which the loader must refuse
 * with a JitLoadException that names the object, the section, symbol or relocation, and why;
 * and after which nothing is mapped, published or heard by listeners. Without the check it
 * guards, each of these objects either loads (wrongly) or fails with another exception.
 */
class ObjectChecksTest {
    private static final List<String> MATH_GLOBALS = List.of("add", "fib", "sum_array", "apply", "operations");

    /** Loads {@code bytes} into a fresh host, expecting a refusal, and returns its message. */
    private static String refused(String name, byte[] bytes) {
        List<String> events = new CopyOnWriteArrayList<>();
        try (JitHost host = new JitHost()) {
            host.addListener(new JitEventListener() {
                @Override
                public void objectLoaded(LoadedObject object) {
                    events.add("objectLoaded " + object.name());
                }

                @Override
                public void functionEmitted(EmittedFunction function) {
                    events.add("functionEmitted " + function.name());
                }

                @Override
                public void objectFreeing(LoadedObject object) {
                    events.add("objectFreeing " + object.name());
                }
            });
            long live = JitHost.liveMappings();
            long registrations = JitHost.liveEhFrameRegistrations();
            JitLoadException e = assertThrows(JitLoadException.class, () -> host.load(name, MemorySegment.ofArray(bytes)));
            assertEquals(live, JitHost.liveMappings(), "mappings left behind by the failed load");
            assertEquals(registrations, JitHost.liveEhFrameRegistrations(), "unwind registrations left by the failed load");
            assertTrue(host.objects().isEmpty(), "objects published by the failed load");
            for (String global : MATH_GLOBALS) {
                assertTrue(host.symbol(global).isEmpty(), global + " was published by the failed load");
            }
            assertEquals(List.of(), events, "events heard of the failed load");
            return e.getMessage();
        }
    }

    // Symbols.

    @Test
    void rejectsASymbolZeroThatIsNotTheNullSymbol() throws Exception {
        // Symbol 0 dressed as a global function 'add' in .text; the linker would give it address 0.
        ObjectEditor math = ObjectEditor.of("math");
        byte[] bytes = math.symbolField(0, ST_NAME, math.nameOffset("add"))
                .symbolField(0, ST_INFO, (ElfSymbol.STB_GLOBAL << 4) | ElfSymbol.STT_FUNC)
                .symbolField(0, ST_SHNDX, math.section(".text").index()).symbolField(0, ST_SIZE, 5).bytes();
        assertEquals("bad.o: symbol 0 is not the null symbol (its name, type, binding, section, value and size must all be 0)",
                refused("bad.o", bytes));
    }

    @Test
    void rejectsSymbolWhoseSizeRunsPastItsSection() throws Exception {
        byte[] bytes = ObjectEditor.of("math").symbolField("fib", ST_SIZE, 0x1000).bytes();
        assertEquals("bad.o: symbol 'fib' (index 6) at st_value 0x10 with st_size 0x1000 runs past the end of section "
                + ".text [2] of 0x96 bytes", refused("bad.o", bytes));
    }

    @Test
    void rejectsSymbolWhoseValueLiesPastItsSection() throws Exception {
        byte[] bytes = ObjectEditor.of("math").symbolField("sum_array", ST_VALUE, 0x200).bytes();
        assertEquals("bad.o: symbol 'sum_array' (index 7) at st_value 0x200 with st_size 0x1d runs past the end of section "
                + ".text [2] of 0x96 bytes", refused("bad.o", bytes));
    }

    @Test
    void rejectsSymbolWhoseValuePlusSizeWrapsAround() throws Exception {
        // 0x10 + 0xfffffffffffffff8 wraps to 8, which a naive sum would find inside .text.
        byte[] bytes = ObjectEditor.of("math").symbolField("fib", ST_SIZE, 0xffff_ffff_ffff_fff8L).bytes();
        assertEquals("bad.o: symbol 'fib' (index 6) at st_value 0x10 with st_size 0xfffffffffffffff8 runs past the end of "
                + "section .text [2] of 0x96 bytes", refused("bad.o", bytes));
    }

    @Test
    void rejectsSymbolDefinedInASectionThatDoesNotExist() throws Exception {
        byte[] bytes = ObjectEditor.of("math").symbolField("sum_array", ST_SHNDX, 50).bytes();
        assertEquals("bad.o: symbol 'sum_array' (index 7) is defined in section 50, but the object has 10 sections",
                refused("bad.o", bytes));
    }

    @Test
    void rejectsSymbolWithAReservedSectionIndex() throws Exception {
        // SHN_XINDEX: the real index would be in an SHT_SYMTAB_SHNDX section, which LLVM writes only past 65,279 sections.
        byte[] bytes = ObjectEditor.of("math").symbolField("sum_array", ST_SHNDX, 0xffff).bytes();
        assertEquals("bad.o: symbol 'sum_array' (index 7) has reserved section index 0xffff, which the host does not support",
                refused("bad.o", bytes));
    }

    @Test
    void rejectsUndefinedSymbolWithoutAName() throws Exception {
        byte[] bytes = ObjectEditor.of("math").symbolField("sum_array", ST_SHNDX, ElfSymbol.SHN_UNDEF)
                .symbolField("sum_array", ST_NAME, 0).bytes();
        assertEquals("bad.o: undefined symbol 7 has no name, so nothing can resolve it", refused("bad.o", bytes));
    }

    @Test
    void rejectsAGlobalSymbolDefinedTwice() throws Exception {
        ObjectEditor math = ObjectEditor.of("math");
        // sum_array takes fib's name: two definitions of 'fib' in one object.
        long fibName = math.nameOffset("fib");
        byte[] bytes = math.symbolField("sum_array", ST_NAME, fibName).bytes();
        assertEquals("bad.o: symbol 'fib' is defined twice, as symbols 6 and 7", refused("bad.o", bytes));
    }

    @Test
    void rejectsCommonSymbolWhoseAlignmentIsNotAPowerOfTwo() throws Exception {
        byte[] bytes = common(ObjectEditor.of("math"), "operations", 24, 16).bytes();
        assertEquals("bad.o: COMMON symbol 'operations' (index 9) asks for alignment 24 (st_value), which is not a power of two",
                refused("bad.o", bytes));
    }

    @Test
    void rejectsCommonSymbolLargerThanAnObjectMayMap() throws Exception {
        // So large that adding it to the layout would wrap around to a small total.
        byte[] bytes = common(ObjectEditor.of("math"), "operations", 8, 0x7fff_ffff_ffff_fff0L).bytes();
        assertEquals("bad.o: COMMON symbol 'operations' (index 9) has st_size 0x7ffffffffffffff0, more than the 1073741824 "
                + "bytes the host maps for one object", refused("bad.o", bytes));
    }

    @Test
    void rejectsObjectWhoseLayoutOutgrowsOneMapping() throws Exception {
        // Two COMMON symbols of 768 MiB each: each fits, together they do not.
        ObjectEditor math = common(ObjectEditor.of("math"), "operations", 8, 0x3000_0000L);
        byte[] bytes = common(math, "sum_array", 8, 0x3000_0000L).bytes();
        String message = refused("bad.o", bytes);
        assertTrue(message.startsWith("bad.o: its sections, far-call trampolines, GOT and COMMON symbols need "), message);
        assertTrue(message.endsWith(" bytes, more than the 1073741824 bytes the host maps for one object"), message);
    }

    // Relocations.

    @Test
    void rejectsRelocationWhoseFieldRunsPastItsSection() throws Exception {
        // A 4-byte PLT32 field at 0x94 of the 0x96-byte .text.
        byte[] bytes = ObjectEditor.of("math").relocationField(".rela.text", 0, R_OFFSET, 0x94).bytes();
        assertEquals("bad.o: relocation R_X86_64_PLT32 in .text at offset 0x94 writes 4 bytes outside .text of 150 bytes",
                refused("bad.o", bytes));
    }

    @Test
    void rejectsRelocationOffsetThatWrapsAround() throws Exception {
        // 0xfffffffffffffffe + 4 wraps to 2, which a naive sum would find inside .text.
        byte[] bytes = ObjectEditor.of("math").relocationField(".rela.text", 0, R_OFFSET, 0xffff_ffff_ffff_fffeL).bytes();
        assertEquals("bad.o: relocation R_X86_64_PLT32 in .text at offset 0xfffffffffffffffe writes 4 bytes outside .text "
                + "of 150 bytes", refused("bad.o", bytes));
    }

    @Test
    void rejectsRelocationInASectionSmallerThanItsField() throws Exception {
        // .data.rel.ro cut to 4 bytes: its 8-byte R_X86_64_64 fields no longer fit at any offset,
        // although "size - 8" wraps around to a bound that every offset passes.
        byte[] bytes = ObjectEditor.of("math").sectionField(".data.rel.ro", SH_SIZE, 4)
                .symbolField("operations", ST_SIZE, 0).bytes();
        assertEquals("bad.o: relocation R_X86_64_64 in .data.rel.ro at offset 0x0 writes 8 bytes outside .data.rel.ro of 4 bytes",
                refused("bad.o", bytes));
    }

    @Test
    void rejectsRelocationAgainstASymbolOutsideTheTable() throws Exception {
        byte[] bytes = ObjectEditor.of("math").relocationSymbol(".rela.data.rel.ro", 0, 1000).bytes();
        assertEquals("bad.o: relocation R_X86_64_64 in .data.rel.ro at offset 0x0 refers to symbol 1000, outside the symbol "
                + "table of 10", refused("bad.o", bytes));
    }

    @Test
    void rejectsRelocationAgainstASymbolOfASectionThatIsNotLoaded() throws Exception {
        // 'add' moved to .note.GNU-stack (empty, not SHF_ALLOC): it would have no address.
        ObjectEditor math = ObjectEditor.of("math");
        int note = math.section(".note.GNU-stack").index();
        byte[] bytes = math.symbolField("add", ST_SHNDX, note).symbolField("add", ST_SIZE, 0).bytes();
        assertEquals("bad.o: relocation R_X86_64_64 in .data.rel.ro at offset 0x0 refers to symbol 'add' (index 5) of section "
                + ".note.GNU-stack [6], which is not loaded (empty or not SHF_ALLOC)", refused("bad.o", bytes));
    }

    // Sections.

    @Test
    void rejectsSectionAlignmentThatIsNotAPowerOfTwo() throws Exception {
        byte[] bytes = ObjectEditor.of("math").sectionField(".text", SH_ADDRALIGN, 24).bytes();
        assertEquals("bad.o: section .text [2] asks for alignment 24 (sh_addralign), which is not a power of two",
                refused("bad.o", bytes));
    }

    @Test
    void rejectsSectionAlignmentLargerThanAPage() throws Exception {
        byte[] bytes = ObjectEditor.of("math").sectionField(".data.rel.ro", SH_ADDRALIGN, 1L << 63).bytes();
        assertEquals("bad.o: section .data.rel.ro [4] asks for alignment 9223372036854775808 (sh_addralign), which is more "
                + "than the page size " + pageSize() + " the mapping is aligned to", refused("bad.o", bytes));
    }

    @Test
    void rejectsAllocatedSectionOfTypeNull() throws Exception {
        // The ELF reader does not check where an SHT_NULL section's bytes are: there are none to load.
        byte[] bytes = ObjectEditor.of("math").sectionField(".data.rel.ro", SH_TYPE, ElfSection.SHT_NULL).bytes();
        assertEquals("bad.o: section .data.rel.ro [4] is SHF_ALLOC but of type SHT_NULL, so it has no bytes to load",
                refused("bad.o", bytes));
    }

    @Test
    void rejectsZeroFilledSectionLargerThanAnObjectMayMap() throws Exception {
        // An SHT_NOBITS size is not bounded by the file; this one would wrap the layout around.
        byte[] bytes = ObjectEditor.of("math").sectionField(".data.rel.ro", SH_TYPE, ElfSection.SHT_NOBITS)
                .sectionField(".data.rel.ro", SH_SIZE, 0xffff_ffff_ffff_0000L).bytes();
        assertEquals("bad.o: section .data.rel.ro [4] has sh_size 0xffffffffffff0000, more than the 1073741824 bytes the host "
                + "maps for one object", refused("bad.o", bytes));
    }

    @Test
    void rejectsExecutableSectionWithoutBytes() throws Exception {
        byte[] bytes = ObjectEditor.of("math").sectionField(".text", SH_TYPE, ElfSection.SHT_NOBITS).bytes();
        assertEquals("bad.o: section .text [2] is executable but of type SHT_NOBITS: code must have bytes in the file",
                refused("bad.o", bytes));
    }

    @Test
    void rejectsStackMapSectionWithoutBytes() throws Exception {
        // Found by fuzzing: 0.5 to 1 GiB of zeros took the stack map parser seconds to read through.
        byte[] bytes = ObjectEditor.of("safepoints").sectionField(".llvm_stackmaps", SH_TYPE, ElfSection.SHT_NOBITS)
                .sectionField(".llvm_stackmaps", SH_SIZE, 0x2c00_000cL).bytes();
        assertEquals("bad.o: section .llvm_stackmaps [4] is of type SHT_NOBITS: a stack map section must have bytes in the file",
                refused("bad.o", bytes));
    }

    // The relocated .eh_frame, before the process unwinder is given it (math.o's: a CIE at 0 with
    // augmentation "zR" and FDE encoding 0x1b at offset 16, then five FDEs, the first at 0x18).

    private static final String EH_FRAME = "bad.o: .eh_frame of 152 bytes: ";

    /** math.o with {@code width} bytes at {@code offset} of its .eh_frame overwritten, refused: the message. */
    private static String refusedEhFrame(int offset, int width, long value) throws Exception {
        return refused("bad.o", ObjectEditor.of("math").sectionBytes(".eh_frame", offset, width, value).bytes());
    }

    @Test
    void rejectsEhFrameWithATerminatorBeforeItsEnd() throws Exception {
        assertEquals(EH_FRAME + "a zero length (a terminator) at offset 0x18 before the end: the unwinder would ignore "
                + "the 124 bytes after it", refusedEhFrame(0x18, 4, 0));
    }

    @Test
    void rejectsEhFrameRecordRunningPastTheSection() throws Exception {
        assertEquals(EH_FRAME + "the record at offset 0x18 has length 4096, which runs past the end",
                refusedEhFrame(0x18, 4, 0x1000));
    }

    @Test
    void rejectsFdeWhoseCiePointerMissesEveryCie() throws Exception {
        assertEquals(EH_FRAME + "the FDE at offset 0x18 points to a CIE at offset 0x4, where no CIE of the section starts",
                refusedEhFrame(0x1c, 4, 0x18));
    }

    @Test
    void rejectsCieOfAVersionLlcDoesNotWrite() throws Exception {
        assertEquals(EH_FRAME + "the CIE at offset 0x0 has version 2; the host registers versions 1 and 3, as llc "
                + "writes them", refusedEhFrame(8, 1, 2));
    }

    @Test
    void rejectsCieWithAPointerEncodingLibgccWouldAbortOn() throws Exception {
        // 0x0d is no DWARF pointer format: libgcc's read_encoded_value aborts the process on it.
        assertEquals(EH_FRAME + "the CIE at offset 0x0 has FDE pointer encoding 0xd; the host registers fixed-size "
                + "absolute or PC-relative pointers", refusedEhFrame(16, 1, 0x0d));
    }

    @Test
    void rejectsCieWhoseAugmentationDataRunsPastTheRecord() throws Exception {
        assertEquals(EH_FRAME + "the record ending at offset 0x18 is cut off at offset 0x10: 127 more bytes needed",
                refusedEhFrame(15, 1, 0x7f));
    }

    @Test
    void rejectsCieAugmentationThatDoesNotStartWithZ() throws Exception {
        // "zR" at offsets 9 and 10 becomes "eR": a GCC 2 augmentation libgcc would read without its data length.
        assertEquals(EH_FRAME + "the CIE at offset 0x0 has augmentation \"eR\", which does not start with 'z'",
                refusedEhFrame(9, 1, 'e'));
    }

    @Test
    void rejectsCieAugmentationLetterOtherThanPLRS() throws Exception {
        // "zR" becomes "zB": the FDE pointer encoding is no longer announced, the data byte 0x1b is unaccounted for.
        assertEquals(EH_FRAME + "the CIE at offset 0x0 has augmentation \"zB\", whose 'B' the host does not know",
                refusedEhFrame(10, 1, 'B'));
    }

    // The call frame programs, which libgcc interprets only when it first unwinds through the code:
    // the first FDE's program is three DW_CFA_nop at offsets 0x29 to 0x2b.

    @Test
    void rejectsCallFrameOpcodeTheUnwinderDoesNotKnow() throws Exception {
        // libgcc's execute_cfa_program reaches gcc_unreachable() on 0x3f: an abort at the first unwind.
        assertEquals(EH_FRAME + "the FDE at offset 0x18 has call frame opcode 0x3f at offset 0x29, which the unwinder "
                + "does not know", refusedEhFrame(0x29, 1, 0x3f));
    }

    @Test
    void rejectsRestoreStateWithNothingRemembered() throws Exception {
        assertEquals(EH_FRAME + "the FDE at offset 0x18 has a DW_CFA_restore_state at offset 0x29 with no state "
                + "remembered before it", refusedEhFrame(0x29, 1, 0x0b));
    }

    @Test
    void acceptsRestoreStateAfterRememberState() throws Exception {
        byte[] bytes = ObjectEditor.of("math").sectionBytes(".eh_frame", 0x29, 2, 0x0b0a).bytes();
        try (JitHost host = new JitHost()) {
            host.unload(host.load("remembered.o", MemorySegment.ofArray(bytes)), false);
        }
    }

    @Test
    void rejectsCallFrameOperandCutOffByItsRecord() throws Exception {
        // DW_CFA_advance_loc4 needs four bytes; the record has two left.
        assertEquals(EH_FRAME + "the record ending at offset 0x2c is cut off at offset 0x2a: 4 more bytes needed",
                refusedEhFrame(0x29, 1, 0x04));
    }

    @Test
    void rejectsCallFrameExpressions() throws Exception {
        assertEquals(EH_FRAME + "the FDE at offset 0x18 has a DWARF expression opcode 0xf at offset 0x29; the host "
                + "registers call frame programs without expressions", refusedEhFrame(0x29, 1, 0x0f));
    }

    @Test
    void rejectsCieInitialInstructionsTheUnwinderDoesNotKnow() throws Exception {
        // The CIE's program is DW_CFA_def_cfa rsp+8, DW_CFA_offset rip, then two DW_CFA_nop at 0x16 and 0x17.
        assertEquals(EH_FRAME + "the CIE at offset 0x0 has call frame opcode 0x3f at offset 0x17, which the unwinder "
                + "does not know", refusedEhFrame(0x17, 1, 0x3f));
    }

    @Test
    void rejectsFdeDescribingCodeOutsideTheObject() throws Exception {
        // The first FDE's pc_begin relocated to .text + 1 MiB: unwind information for code the object does not own.
        byte[] bytes = ObjectEditor.of("math").relocationField(".rela.eh_frame", 0, R_ADDEND, 0x10_0000).bytes();
        String message = refused("bad.o", bytes);
        assertTrue(message.matches(java.util.regex.Pattern.quote(EH_FRAME) + "the FDE at offset 0x18 describes "
                + "\\[0x[0-9a-f]+, \\+0x5\\), outside the object's code \\[0x[0-9a-f]+, \\+0x1000\\)"), message);
    }

    @Test
    void rejectsAnEhFrameWhoseFunctionTheUnwinderFindsInAnotherFde() throws Exception {
        // The second FDE (offset 0x2c) relocated to .text + 0 like the first: both pass the checks made
        // before registering, inside the object's code, but libgcc finds one FDE for that address, so
        // one of the two functions would be unwound with the other's CFI. Only the lookup after
        // __register_frame can see it.
        byte[] bytes = ObjectEditor.of("math").relocationField(".rela.eh_frame", 1, R_ADDEND, 0).bytes();
        String message = refused("bad.o", bytes);
        assertTrue(message.matches("bad\\.o: after __register_frame the unwinder finds 0x[0-9a-f]+ in the FDE at "
                + "0x[0-9a-f]+, not in the FDE at offset 0x(18|2c) of its \\.eh_frame \\(0x[0-9a-f]+\\): another FDE of its own "
                + "\\.eh_frame covers that address"), message);
    }

    // The same objects, uncorrupted, still load: the checks refuse only what they should.

    @Test
    void everyFixtureStillLoads() throws Exception {
        List<Path> fixtures;
        try (Stream<Path> files = Files.list(JitFixtures.object("math").getParent())) {
            // absolute.o needs a mapping in the low 2 GiB, which this JVM may not have free:
            // JitHostTest.placesObjectsWith32BitAbsoluteAddressesInTheLow2GiB loads it. catch-static.o
            // is refused once libstdc++ is loaded (UnwindTest), as it should be.
            fixtures = files.filter(f -> f.toString().endsWith(".o") && !f.endsWith("absolute.o")
                    && !f.endsWith("catch-static.o")).sorted().toList();
        }
        assertTrue(fixtures.size() >= 8, fixtures.toString());
        for (Path fixture : fixtures) {
            MemorySegment bytes = MemorySegment.ofArray(Files.readAllBytes(fixture));
            try (JitHost host = new JitHost()) {
                // Imports from other fixtures and from the embedder, at an address nothing calls.
                for (ElfSymbol s : ElfFile.parse(bytes).symbols()) {
                    if (s.isUndefined() && !s.name().isEmpty() && host.address(s.name()).isEmpty()) {
                        host.defineRuntimeSymbol(s.name(), MemorySegment.ofAddress(0x10000));
                    }
                }
                host.unload(host.load(fixture.getFileName().toString(), bytes), false);
            } catch (JitLoadException e) {
                throw new AssertionError(fixture.getFileName() + " no longer loads: " + e.getMessage(), e);
            }
        }
    }

    // Corruption anywhere, as users meet it.

    @Test
    void randomlyCorruptedCopiesOfAnObjectLoadOrAreRefused() throws Exception {
        // A few random bytes overwritten in each copy. A fixed seed, so a failure names a copy
        // that can be built again.
        byte[] math = JitFixtures.bytes("math");
        Random random = new Random(20261201);
        try (JitHost host = new JitHost()) {
            long live = JitHost.liveMappings();
            int loaded = 0;
            for (int copy = 0; copy < 1000; copy++) {
                byte[] bytes = math.clone();
                for (int n = 1 + random.nextInt(8); n > 0; n--) {
                    bytes[random.nextInt(bytes.length)] = (byte) random.nextInt(256);
                }
                try {
                    host.unload(host.load("copy" + copy + ".o", MemorySegment.ofArray(bytes)), false);
                    loaded++;
                } catch (JitLoadException refused) {
                    assertTrue(refused.getMessage().startsWith("copy" + copy + ".o: "), refused.getMessage());
                } catch (RuntimeException e) {
                    throw new AssertionError("copy " + copy + " failed with " + e, e);
                }
            }
            assertEquals(live, JitHost.liveMappings(), "mappings left behind");
            assertTrue(host.objects().isEmpty());
            assertTrue(loaded > 0, "no copy loaded: the corruption is too coarse to say anything");
        }
    }

    /** Turns {@code symbol} into a COMMON symbol with the given alignment (st_value) and size. */
    private static ObjectEditor common(ObjectEditor object, String symbol, long alignment, long size) {
        return object.symbolField(symbol, ST_SHNDX, ElfSymbol.SHN_COMMON).symbolField(symbol, ST_VALUE, alignment)
                .symbolField(symbol, ST_SIZE, size);
    }

    private static long pageSize() {
        return dev.safepointkit.events.internal.Libc.pageSize();
    }
}
