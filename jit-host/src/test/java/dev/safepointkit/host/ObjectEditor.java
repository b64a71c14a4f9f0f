package dev.safepointkit.host;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfFormatException;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * A copy of a fixture object with chosen fields of its section headers, symbols and relocations
 * (or bytes of a section's contents) overwritten, for tests of what the loader refuses. Fields are found through the ELF reader on
 * the original bytes, so each edit changes exactly one field and nothing else.
 */
final class ObjectEditor {
    /** A field of an Elf64_Shdr (SH_), an Elf64_Sym (ST_) or an Elf64_Rela (R_): offset in its entry and width. */
    enum Field {
        SH_TYPE(4, 4), SH_SIZE(32, 8), SH_ADDRALIGN(48, 8),
        ST_NAME(0, 4), ST_INFO(4, 1), ST_OTHER(5, 1), ST_SHNDX(6, 2), ST_VALUE(8, 8), ST_SIZE(16, 8),
        R_OFFSET(0, 8), R_ADDEND(16, 8);

        final int offset;
        final int width;

        Field(int offset, int width) {
            this.offset = offset;
            this.width = width;
        }
    }

    private static final int E_SHOFF = 40;
    private static final int SHDR_SIZE = 64;
    private static final int SYM_SIZE = 24;
    private static final int RELA_SIZE = 24;
    private static final int R_INFO = 8;

    private final byte[] bytes;
    private final ByteBuffer out;
    private final ElfFile elf;
    private final List<ElfSymbol> symbols;

    private ObjectEditor(byte[] bytes) throws ElfFormatException {
        this.bytes = bytes;
        this.out = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        // Parsed from a copy: the edits must not move what later edits look up.
        this.elf = ElfFile.parse(MemorySegment.ofArray(bytes.clone()));
        this.symbols = elf.symbols();
    }

    /** An editor over a fresh copy of fixtures/jit/x86_64/{@code fixture}.o. */
    static ObjectEditor of(String fixture) throws ElfFormatException {
        return new ObjectEditor(JitFixtures.bytes(fixture));
    }

    ElfSection section(String name) {
        return elf.findSection(name).orElseThrow(() -> new IllegalArgumentException("no section " + name));
    }

    ElfSymbol symbol(String name) {
        return symbols.stream().filter(s -> s.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no symbol " + name));
    }

    /** The st_name of {@code symbol}: where its name starts in the string table. */
    long nameOffset(String symbol) {
        ElfSection table = elf.sections().stream().filter(s -> s.type() == ElfSection.SHT_SYMTAB).findFirst().orElseThrow();
        return out.getInt((int) (table.offset() + (long) symbol(symbol).index() * SYM_SIZE + Field.ST_NAME.offset)) & 0xffff_ffffL;
    }

    ObjectEditor sectionField(String section, Field field, long value) {
        return put(out.getLong(E_SHOFF) + (long) section(section).index() * SHDR_SIZE, field, value);
    }

    ObjectEditor symbolField(String symbol, Field field, long value) {
        return symbolField(symbol(symbol).index(), field, value);
    }

    ObjectEditor symbolField(int index, Field field, long value) {
        ElfSection table = elf.sections().stream().filter(s -> s.type() == ElfSection.SHT_SYMTAB).findFirst().orElseThrow();
        return put(table.offset() + (long) index * SYM_SIZE, field, value);
    }

    /** Sets one field of the {@code index}-th entry of relocation section {@code relaSection}. */
    ObjectEditor relocationField(String relaSection, int index, Field field, long value) {
        return put(section(relaSection).offset() + (long) index * RELA_SIZE, field, value);
    }

    /** Points the {@code index}-th relocation of {@code relaSection} at symbol {@code symbolIndex}, keeping its type. */
    ObjectEditor relocationSymbol(String relaSection, int index, long symbolIndex) {
        int at = (int) (section(relaSection).offset() + (long) index * RELA_SIZE + R_INFO);
        out.putLong(at, (symbolIndex << 32) | (out.getLong(at) & 0xffff_ffffL));
        return this;
    }

    /** Overwrites the {@code width} bytes (1, 2, 4 or 8) at {@code offset} in the contents of {@code section}. */
    ObjectEditor sectionBytes(String section, long offset, int width, long value) {
        return write(section(section).offset() + offset, width, value);
    }

    byte[] bytes() {
        return bytes.clone();
    }

    private ObjectEditor put(long entry, Field field, long value) {
        return write(entry + field.offset, field.width, value);
    }

    private ObjectEditor write(long offset, int width, long value) {
        int at = (int) offset;
        switch (width) {
            case 1 -> out.put(at, (byte) value);
            case 2 -> out.putShort(at, (short) value);
            case 4 -> out.putInt(at, (int) value);
            default -> out.putLong(at, value);
        }
        return this;
    }
}
