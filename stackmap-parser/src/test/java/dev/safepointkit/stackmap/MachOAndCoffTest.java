package dev.safepointkit.stackmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.ReadobjListing;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Mach-O and COFF objects from llc-19: their stack maps read as llvm-readobj-19 listed them, each
 * function named from the symbol table, and every damaged header, table or offset refused with an
 * error naming the field.
 */
class MachOAndCoffTest {

    static Stream<Path> objects() {
        return Fixtures.machOAndCoffObjects().stream();
    }

    private static byte[] bytes(String fixture) throws IOException {
        return Files.readAllBytes(Fixtures.stackMapFixtures().resolve(fixture));
    }

    @ParameterizedTest
    @MethodSource("objects")
    void readsWhatLlvmReadobjListedAndNamesEveryFunction(Path object) throws Exception {
        ReadobjListing expected = ReadobjListing.parse(Fixtures.expectedListing(object));
        try (Arena arena = Arena.ofConfined()) {
            StackMapObject maps = StackMapObject.read(Fixtures.map(Fixtures.stackMapFixtures().resolve(object), arena))
                    .orElseThrow();
            assertEquals(expected.format(), maps.formatName());
            assertEquals(expected.arch(), maps.archName());
            StackMap map = maps.stackMaps().stackMaps().getFirst();
            assertEquals(expected.functions().size(), map.functionCount());
            assertEquals(expected.records().size(), map.recordCount());
            for (int r = 0; r < map.recordCount(); r++) {
                assertEquals(expected.records().get(r).id(), Long.toUnsignedString(map.record(r).id()));
                assertEquals(expected.records().get(r).locations().size(), map.record(r).locationCount());
            }
            // Mach-O spells C names with a leading underscore, COFF for x86-64 without.
            String prefix = maps instanceof MachOStackMaps ? "_" : "";
            List<String> want = Fixtures.definedFunctions(Fixtures.sourceOf(object)).stream().map(n -> prefix + n).toList();
            List<String> names = maps instanceof MachOStackMaps m ? m.allFunctionNames() : ((CoffStackMaps) maps).allFunctionNames();
            assertEquals(want, names);
        }
    }

    @Test
    void findsTheFormatFromTheFirstBytesAndRefusesOthers() throws Exception {
        assertInstanceOf(MachOStackMaps.class, StackMapObject.read(MemorySegment.ofArray(bytes("macho/arm64/O2/stackmaps.o"))).orElseThrow());
        assertInstanceOf(CoffStackMaps.class, StackMapObject.read(MemorySegment.ofArray(bytes("coff/x86_64/O2/stackmaps.obj"))).orElseThrow());
        assertInstanceOf(ObjectStackMaps.class, StackMapObject.read(MemorySegment.ofArray(bytes("x86_64/O2/stackmaps.o"))).orElseThrow());
        ObjectFormatException e = assertThrows(ObjectFormatException.class,
                () -> StackMapObject.read(MemorySegment.ofArray(new byte[] {1, 2, 3, 4, 5, 6, 7, 8})));
        assertEquals("magic", e.field());
    }

    @ParameterizedTest
    @MethodSource("objects")
    void refusesTruncationAtEveryByte(Path object) throws Exception {
        byte[] whole = Files.readAllBytes(Fixtures.stackMapFixtures().resolve(object));
        for (int length = 0; length < whole.length; length++) {
            MemorySegment cut = MemorySegment.ofArray(whole).asSlice(0, length);
            final int l = length;
            try {
                StackMapObject.read(cut);
                // A cut that leaves every table whole is fine, and only then.
                assertTrue(length >= tablesEnd(object, whole), () -> "accepted a cut at " + l);
            } catch (ObjectFormatException | StackMapFormatException refused) {
                assertTrue(refused.getMessage().contains("malformed"), refused::getMessage);
            }
        }
    }

    /** Where the last table the readers use ends: the string table, which llc writes last. */
    private static long tablesEnd(Path object, byte[] whole) {
        ByteBuffer b = ByteBuffer.wrap(whole).order(ByteOrder.LITTLE_ENDIAN);
        if (object.startsWith("coff")) {
            long strings = b.getInt(8) + 18L * b.getInt(12);
            return strings + b.getInt((int) strings);
        }
        // LC_SYMTAB: find it among the load commands.
        int at = 32;
        for (int c = 0; c < b.getInt(16); c++) {
            if (b.getInt(at) == 2) {
                return Integer.toUnsignedLong(b.getInt(at + 16)) + Integer.toUnsignedLong(b.getInt(at + 20));
            }
            at += b.getInt(at + 4);
        }
        throw new AssertionError("no LC_SYMTAB in " + object);
    }

    /** Offset of the first Mach-O load command with this cmd. */
    private static int machOCommand(ByteBuffer b, int cmd) {
        int at = 32;
        for (int c = 0; c < b.getInt(16); c++) {
            if (b.getInt(at) == cmd) {
                return at;
            }
            at += b.getInt(at + 4);
        }
        throw new AssertionError("no load command " + cmd);
    }

    private static ObjectFormatException refuse(byte[] bytes) {
        return assertThrows(ObjectFormatException.class, () -> StackMapObject.read(MemorySegment.ofArray(bytes)));
    }

    @Test
    void refusesMachOTablesThatLeaveTheFile() throws Exception {
        byte[] good = bytes("macho/x86_64/O2/statepoints.o");
        int segment = machOCommand(ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN), 0x19);

        byte[] offset = good.clone();
        ByteBuffer.wrap(offset).order(ByteOrder.LITTLE_ENDIAN).putInt(segment + 72 + 48, 0x7FFF_FFF0);
        assertEquals("section_64[1].offset", refuse(offset).field());

        byte[] relocations = good.clone();
        ByteBuffer.wrap(relocations).order(ByteOrder.LITTLE_ENDIAN).putInt(segment + 72 + 60, 0x1000_0000);
        assertEquals("section_64[1].reloff", refuse(relocations).field());

        byte[] sections = good.clone();
        ByteBuffer.wrap(sections).order(ByteOrder.LITTLE_ENDIAN).putInt(segment + 64, 1000);
        assertEquals("load_command[0].nsects", refuse(sections).field());

        byte[] commands = good.clone();
        ByteBuffer.wrap(commands).order(ByteOrder.LITTLE_ENDIAN).putInt(16, 100_000);
        assertEquals("mach_header_64.ncmds", refuse(commands).field());

        int symtab = machOCommand(ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN), 2);
        byte[] symbols = good.clone();
        ByteBuffer.wrap(symbols).order(ByteOrder.LITTLE_ENDIAN).putInt(symtab + 12, 0x0FFF_FFFF);
        assertEquals("load_command[" + commandIndex(good, symtab) + "].symoff", refuse(symbols).field());

        byte[] name = good.clone();
        int symoff = ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN).getInt(symtab + 8);
        ByteBuffer.wrap(name).order(ByteOrder.LITTLE_ENDIAN).putInt(symoff, 0x7FFF_FFFF);
        assertEquals("nlist_64[0].n_strx", refuse(name).field());

        byte[] cpu = good.clone();
        cpu[4] = 0x12;
        assertEquals("mach_header_64.cputype", refuse(cpu).field());
    }

    private static int commandIndex(byte[] good, int offset) {
        ByteBuffer b = ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN);
        int at = 32;
        for (int c = 0; ; c++) {
            if (at == offset) {
                return c;
            }
            at += b.getInt(at + 4);
        }
    }

    @Test
    void refusesMachORelocationsOfAnotherKindOrToNoSymbol() throws Exception {
        byte[] good = bytes("macho/arm64/O2/stackmaps.o");
        try (Arena arena = Arena.ofConfined()) {
            var file = dev.safepointkit.stackmap.macho.MachOFile.parse(MemorySegment.ofArray(good));
            var section = file.findSection(MachOStackMaps.SEGMENT_NAME, MachOStackMaps.SECTION_NAME).orElseThrow();
            int info = (int) section.relocationOffset() + 4;
            byte[] type = good.clone();
            type[info + 3] = (byte) ((type[info + 3] & 0x0F) | 0x50);
            assertTrue(refuse(type).getMessage().contains("expected an absolute 8-byte UNSIGNED"));
            byte[] symbol = good.clone();
            symbol[info] = (byte) 0xFF;
            symbol[info + 1] = (byte) 0xFF;
            assertTrue(refuse(symbol).field().endsWith(".r_symbolnum"));
        }
    }

    @Test
    void refusesCoffTablesThatLeaveTheFile() throws Exception {
        byte[] good = bytes("coff/x86_64/O2/statepoints.obj");
        ByteBuffer b = ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN);

        byte[] symbols = good.clone();
        ByteBuffer.wrap(symbols).order(ByteOrder.LITTLE_ENDIAN).putInt(12, 0x0FFF_FFFF);
        assertEquals("IMAGE_FILE_HEADER.NumberOfSymbols", refuse(symbols).field());

        byte[] sections = good.clone();
        ByteBuffer.wrap(sections).order(ByteOrder.LITTLE_ENDIAN).putShort(2, (short) 0x7FFF);
        assertEquals("IMAGE_FILE_HEADER.NumberOfSections", refuse(sections).field());

        int text = 20 + b.getShort(16);
        byte[] data = good.clone();
        ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).putInt(text + 20, 0x7FFF_0000);
        assertEquals("section[1].PointerToRawData", refuse(data).field());

        byte[] strings = good.clone();
        int stringTable = b.getInt(8) + 18 * b.getInt(12);
        ByteBuffer.wrap(strings).order(ByteOrder.LITTLE_ENDIAN).putInt(stringTable, 0x7FFF_0000);
        assertEquals("string table size", refuse(strings).field());

        byte[] aux = good.clone();
        assertTrue(b.getInt(12) < 255);
        aux[b.getInt(8) + 17] = (byte) 255;
        assertEquals("symbol[0].NumberOfAuxSymbols", refuse(aux).field());

        byte[] machine = good.clone();
        machine[0] = 0x4C;
        machine[1] = 0x01;
        assertEquals("magic", refuse(machine).field());
    }

    @Test
    void refusesCoffRelocationsToNoSymbolOrOfAnotherType() throws Exception {
        byte[] good = bytes("coff/x86_64/O2/stackmaps.obj");
        var file = dev.safepointkit.stackmap.coff.CoffFile.parse(MemorySegment.ofArray(good));
        var section = file.findSection(CoffStackMaps.SECTION_NAME).orElseThrow();
        int relocation = (int) section.relocationOffset();
        byte[] symbol = good.clone();
        ByteBuffer.wrap(symbol).order(ByteOrder.LITTLE_ENDIAN).putInt(relocation + 4, 1_000_000);
        assertTrue(refuse(symbol).field().endsWith(".SymbolTableIndex"));
        byte[] type = good.clone();
        ByteBuffer.wrap(type).order(ByteOrder.LITTLE_ENDIAN).putShort(relocation + 8, (short) 4);
        assertTrue(refuse(type).getMessage().contains("expected the 64-bit absolute type 1"));
    }
}
