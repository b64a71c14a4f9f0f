package dev.safepointkit.host;

import dev.safepointkit.stackmap.ObjectStackMaps;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfRelocation;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the linker checks in an object before it maps anything: every section it loads, every
 * symbol and every relocation must fit the object, so that laying out, copying, relocating and
 * describing it can index without further checks. The ELF reader has already checked that the
 * section headers and the tables it read lie inside the file; these checks are about what the
 * loader does with the values (section-relative offsets, sizes, alignments), which only make
 * sense for a relocatable object.
 *
 * <p>Each failure is a {@link JitLoadException} that names the object, the section, symbol or
 * relocation, and the rule it breaks. Stateless; safe from any thread.
 */
final class ObjectChecks {
    /**
     * The most one object may map. Section sizes of SHT_NOBITS sections and COMMON symbols come
     * from the file unchecked by its length; this bound keeps their sum from overflowing or
     * asking for more address space than a JIT object ever needs.
     */
    static final long MAX_MAPPING_BYTES = 1L << 30;

    /** Section indices from here up are reserved (SHN_LORESERVE); only SHN_ABS and SHN_COMMON mean anything here. */
    private static final int SHN_LORESERVE = 0xff00;

    private ObjectChecks() {
    }

    /**
     * Checks a section the linker is about to load ({@code SHF_ALLOC}, not empty): it has bytes
     * (in the file, or zero-filled for SHT_NOBITS, which code and stack maps may not be), an
     * alignment the page-aligned mapping can honour, and a size within {@link #MAX_MAPPING_BYTES}.
     */
    static void loadedSection(String object, ElfSection s, long pageSize) throws JitLoadException {
        if (s.type() == ElfSection.SHT_NULL) {
            throw new JitLoadException(object + ": section " + describe(s) + " is SHF_ALLOC but of type SHT_NULL, "
                    + "so it has no bytes to load");
        }
        if (s.type() == ElfSection.SHT_NOBITS && (s.flags() & ElfSection.SHF_EXECINSTR) != 0) {
            throw new JitLoadException(object + ": section " + describe(s) + " is executable but of type SHT_NOBITS: "
                    + "code must have bytes in the file");
        }
        if (s.type() == ElfSection.SHT_NOBITS && s.name().equals(ObjectStackMaps.SECTION_NAME)) {
            // Zeros are no stack map, and finding out would mean reading every one of them.
            throw new JitLoadException(object + ": section " + describe(s) + " is of type SHT_NOBITS: "
                    + "a stack map section must have bytes in the file");
        }
        checkAlignment(object, "section " + describe(s), "sh_addralign", s.alignment(), pageSize);
        if (Long.compareUnsigned(s.size(), MAX_MAPPING_BYTES) > 0) {
            throw new JitLoadException(object + ": section " + describe(s) + " has sh_size 0x" + Long.toHexString(s.size())
                    + ", more than the " + MAX_MAPPING_BYTES + " bytes the host maps for one object");
        }
    }

    /**
     * Checks every symbol: symbol 0 is the null symbol; a defined one lies inside its section
     * ({@code st_value + st_size} at most the section's size, without wrapping) and its section
     * index names a section, SHN_ABS or SHN_COMMON; a COMMON one has a usable alignment and size;
     * an undefined one has a name to resolve; and no name is exported twice.
     */
    static void symbols(String object, ElfFile elf, List<ElfSymbol> symbols, long pageSize) throws JitLoadException {
        Map<String, ElfSymbol> exported = new HashMap<>();
        for (ElfSymbol s : symbols) {
            if (s.index() == 0) {
                // Relocations against the null symbol mean "no symbol"; the linker gives it address 0.
                if (!s.name().isEmpty() || s.type() != 0 || s.binding() != 0 || s.sectionIndex() != 0 || s.value() != 0
                        || s.size() != 0) {
                    throw new JitLoadException(object + ": symbol 0 is not the null symbol (its name, type, binding, "
                            + "section, value and size must all be 0)");
                }
                continue;
            }
            int shndx = s.sectionIndex();
            if (shndx == ElfSymbol.SHN_UNDEF) {
                if (s.name().isEmpty()) {
                    throw new JitLoadException(object + ": undefined symbol " + s.index() + " has no name, "
                            + "so nothing can resolve it");
                }
                continue;
            }
            if (shndx == ElfSymbol.SHN_COMMON) {
                // For COMMON symbols st_value is the alignment.
                checkAlignment(object, "COMMON symbol " + describe(s), "st_value", s.value(), pageSize);
                if (Long.compareUnsigned(s.size(), MAX_MAPPING_BYTES) > 0) {
                    throw new JitLoadException(object + ": COMMON symbol " + describe(s) + " has st_size 0x"
                            + Long.toHexString(s.size()) + ", more than the " + MAX_MAPPING_BYTES
                            + " bytes the host maps for one object");
                }
            } else if (shndx != ElfSymbol.SHN_ABS) {
                if (shndx >= SHN_LORESERVE) {
                    throw new JitLoadException(object + ": symbol " + describe(s) + " has reserved section index 0x"
                            + Integer.toHexString(shndx) + ", which the host does not support");
                }
                if (shndx >= elf.sections().size()) {
                    throw new JitLoadException(object + ": symbol " + describe(s) + " is defined in section " + shndx
                            + ", but the object has " + elf.sections().size() + " sections");
                }
                ElfSection section = elf.section(shndx);
                if (Long.compareUnsigned(s.value(), section.size()) > 0
                        || Long.compareUnsigned(s.size(), section.size() - s.value()) > 0) {
                    throw new JitLoadException(object + ": symbol " + describe(s) + " at st_value 0x"
                            + Long.toHexString(s.value()) + " with st_size 0x" + Long.toHexString(s.size())
                            + " runs past the end of section " + describe(section) + " of 0x"
                            + Long.toHexString(section.size()) + " bytes");
                }
            }
            if (exports(s)) {
                ElfSymbol first = exported.putIfAbsent(s.name(), s);
                if (first != null) {
                    throw new JitLoadException(object + ": symbol '" + s.name() + "' is defined twice, as symbols "
                            + first.index() + " and " + s.index());
                }
            }
        }
    }

    /**
     * Checks a relocation of loaded section {@code target}: it refers to a symbol of the table,
     * its whole field lies inside the section (no wrap-around for huge offsets or for sections
     * smaller than the field), and the symbol has an address: it is undefined (resolved by name),
     * absolute, COMMON, or defined in a loaded section.
     */
    static void relocation(String object, ElfFile elf, ElfSection target, ElfRelocation r, List<ElfSymbol> symbols,
            Set<Integer> loadedSections) throws JitLoadException {
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
        ElfSymbol sym = symbols.get(r.symbolIndex());
        int shndx = sym.sectionIndex();
        if (r.symbolIndex() != 0 && shndx != ElfSymbol.SHN_UNDEF && shndx != ElfSymbol.SHN_ABS
                && shndx != ElfSymbol.SHN_COMMON && !loadedSections.contains(shndx)) {
            // symbols() has checked shndx: it names a section, which is empty or not SHF_ALLOC.
            throw new JitLoadException(object + ": relocation " + where + " refers to symbol " + describe(sym)
                    + " of section " + describe(elf.section(shndx)) + ", which is not loaded (empty or not SHF_ALLOC)");
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

    /** Whether {@code s} is a definition other objects may link to. */
    static boolean exports(ElfSymbol s) {
        return !s.isUndefined() && s.binding() != ElfSymbol.STB_LOCAL && !s.name().isEmpty()
                && s.type() != ElfSymbol.STT_SECTION && s.type() != ElfSymbol.STT_FILE;
    }

    private static void checkAlignment(String object, String what, String field, long alignment, long pageSize)
            throws JitLoadException {
        // 0 and 1 mean no constraint; the mapping starts on a page, so larger alignments cannot be met.
        if (Long.bitCount(alignment) > 1 || Long.compareUnsigned(alignment, pageSize) > 0) {
            throw new JitLoadException(object + ": " + what + " asks for alignment " + Long.toUnsignedString(alignment)
                    + " (" + field + "), which is " + (Long.bitCount(alignment) > 1 ? "not a power of two"
                    : "more than the page size " + pageSize + " the mapping is aligned to"));
        }
    }

    private static String describe(ElfSection s) {
        return s.name().isEmpty() ? "[" + s.index() + "]" : s.name() + " [" + s.index() + "]";
    }

    private static String describe(ElfSymbol s) {
        return (s.name().isEmpty() ? "" : "'" + s.name() + "' ") + "(index " + s.index() + ")";
    }
}
