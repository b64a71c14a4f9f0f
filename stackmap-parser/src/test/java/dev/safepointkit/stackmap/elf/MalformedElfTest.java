package dev.safepointkit.stackmap.elf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.ObjectStackMaps;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/** Files that are not ELF64, or whose headers point outside the file, are refused clearly. */
class MalformedElfTest {

    private static byte[] fixture(String name) throws IOException {
        return Files.readAllBytes(Fixtures.stackMapFixtures().resolve(name));
    }

    private static ElfFormatException refuse(byte[] bytes) {
        return assertThrows(ElfFormatException.class, () -> ElfFile.parse(MemorySegment.ofArray(bytes)));
    }

    @Test
    void rejectsNonElfAndElf32() {
        assertTrue(refuse(new byte[0]).getMessage().contains("too short"));
        assertTrue(refuse("#!/bin/sh\necho not an object file at all, but long enough for a header......."
                .getBytes()).getMessage().contains("bad magic"));
        byte[] elf32 = new byte[64];
        elf32[0] = 0x7f;
        elf32[1] = 'E';
        elf32[2] = 'L';
        elf32[3] = 'F';
        elf32[4] = 1;
        elf32[5] = 1;
        ElfFormatException e = refuse(elf32);
        assertEquals("e_ident[EI_CLASS]", e.field());
        assertTrue(e.getMessage().contains("ELF32"));
    }

    @Test
    void rejectsTruncationAtEveryLengthOfARealObject() throws Exception {
        byte[] whole = fixture("x86_64/O2/patchpoints.o");
        for (int length = 0; length < whole.length; length++) {
            byte[] cut = java.util.Arrays.copyOf(whole, length);
            // Whatever survives the cut must fail as a format error, never another exception.
            try {
                ElfFile elf = ElfFile.parse(MemorySegment.ofArray(cut));
                ObjectStackMaps.read(elf);
                elf.symbols();
                elf.soname();
            } catch (IOException expected) {
                continue;
            }
            throw new AssertionError("cut at " + length + " of " + whole.length + " was accepted");
        }
    }

    @Test
    void rejectsSectionHeadersOutsideTheFile() throws Exception {
        byte[] bytes = fixture("x86_64/O0/stackmaps.o");
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(40, bytes.length - 10);
        assertEquals("e_shoff", refuse(bytes).field());

        bytes = fixture("x86_64/O0/stackmaps.o");
        b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort(60, (short) 0x7fff);
        assertEquals("e_shnum", refuse(bytes).field());
    }

    @Test
    void rejectsASectionWhoseBytesLieOutsideTheFile() throws Exception {
        byte[] bytes = fixture("x86_64/O0/stackmaps.o");
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long shoff = b.getLong(40);
        // Section 1's size: far beyond the end of the file.
        b.putLong((int) shoff + 64 + 32, 1L << 40);
        ElfFormatException e = refuse(bytes);
        assertEquals("section[1].sh_offset/sh_size", e.field());
        assertEquals(shoff + 64 + 24, e.offset());
    }

    @Test
    void rejectsRelocationsOfUnexpectedTypeForFunctionAddresses() throws Exception {
        byte[] bytes = fixture("x86_64/O0/stackmaps.o");
        ElfFile elf = ElfFile.parse(MemorySegment.ofArray(bytes));
        ElfSection rela = elf.findSection(".rela.llvm_stackmaps").orElseThrow();
        // r_info of the first relocation: keep the symbol, make the type R_X86_64_PC32 (2).
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int info = (int) rela.offset() + 8;
        b.putLong(info, (b.getLong(info) & 0xffff_ffff_0000_0000L) | 2);
        ElfFormatException e = assertThrows(ElfFormatException.class,
                () -> ObjectStackMaps.read(ElfFile.parse(MemorySegment.ofArray(bytes))));
        assertTrue(e.getMessage().contains("relocation type 2"), e.getMessage());
    }

    @Test
    void readsBigEndianObjects() throws Exception {
        ElfFile elf = ElfFile.parse(MemorySegment.ofArray(fixture("aarch64_be/O2/stackmaps.o")));
        assertEquals(ByteOrder.BIG_ENDIAN, elf.byteOrder());
        assertEquals(ElfFile.EM_AARCH64, elf.machine());
        assertEquals(ElfFile.ET_REL, elf.type());
        assertTrue(elf.symbols().stream().anyMatch(s -> s.name().equals("constants") && s.isFunction()));
        assertEquals(4, elf.relocationsFor(elf.findSection(".llvm_stackmaps").orElseThrow()).size());
    }
}
