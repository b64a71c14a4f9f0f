package dev.safepointkit.host;

import dev.safepointkit.stackmap.elf.ElfRelocation;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.util.List;

/**
 * What the linker checks in an object before it maps anything, so that relocating it can index
 * without further checks. The ELF reader has already checked that the section headers and the
 * tables it read lie inside the file; these checks are about what the loader does with the
 * values (section-relative offsets, sizes), which only make sense for a relocatable object.
 *
 * <p>Each failure is a {@link JitLoadException} that names the object, the section, symbol or
 * relocation, and the rule it breaks. Stateless; safe from any thread.
 */
final class ObjectChecks {
    private ObjectChecks() {
    }

    /**
     * Checks a relocation of loaded section {@code target}: it refers to a symbol of the table,
     * and its whole field lies inside the section (no wrap-around for huge offsets or for
     * sections smaller than the field).
     */
    static void relocation(String object, ElfSection target, ElfRelocation r, List<ElfSymbol> symbols)
            throws JitLoadException {
        String where = X86Relocations.name(r.type()) + " in " + target.name() + " at offset 0x" + Long.toHexString(r.offset());
        if (r.symbolIndex() < 0 || r.symbolIndex() >= symbols.size()) {
            throw new JitLoadException(object + ": relocation " + where + " refers to symbol "
                    + Integer.toUnsignedString(r.symbolIndex()) + ", outside the symbol table of " + symbols.size());
        }
        int field = fieldSize(r.type());
        if (field > target.size() || Long.compareUnsigned(r.offset(), target.size() - field) > 0) {
            throw new JitLoadException(object + ": relocation " + where + " writes " + field + " bytes outside "
                    + target.name() + " of " + target.size() + " bytes");
        }
    }

    /** The bytes a relocation of {@code type} writes. */
    static int fieldSize(int type) {
        return switch (type) {
            case X86Relocations.R_X86_64_NONE -> 0;
            case X86Relocations.R_X86_64_64, X86Relocations.R_X86_64_PC64 -> 8;
            default -> 4;
        };
    }
}
