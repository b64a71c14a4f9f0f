package dev.safepointkit.stackmap;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfFormatException;
import dev.safepointkit.stackmap.elf.ElfRelocation;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The stack maps of one ELF file, each function record tied to the symbol of its function
 * ({@link MachOStackMaps} and {@link CoffStackMaps} do the same for the other formats).
 *
 * <p>In a relocatable object ({@code .o}) the FunctionAddress fields hold 0 and the functions are
 * named by the relocations in {@code .rela.llvm_stackmaps}; in a linked file they hold addresses,
 * which are matched against the function symbols. Everything is resolved once, when read.
 *
 * <p>Immutable; safe to share between threads while the file's memory stays valid and unwritten.
 */
public final class ObjectStackMaps implements StackMapObject {
    /** The section LLVM writes stack maps to in ELF files. */
    public static final String SECTION_NAME = ".llvm_stackmaps";

    private final ElfFile elf;
    private final ElfSection section;
    private final StackMapSection stackMaps;
    /** Per stack map, per function record: the function's symbol, or null when none names it. */
    private final ElfSymbol[][] functionSymbols;

    private ObjectStackMaps(ElfFile elf, ElfSection section, StackMapSection stackMaps, ElfSymbol[][] functionSymbols) {
        this.elf = elf;
        this.section = section;
        this.stackMaps = stackMaps;
        this.functionSymbols = functionSymbols;
    }

    /**
     * Reads the stack maps of {@code elf}; empty when it has no {@code .llvm_stackmaps} section.
     * Parses the section and resolves every function's symbol now, from the relocations in a
     * relocatable object or by address in a linked file.
     *
     * @param elf the file; its image must stay valid and unwritten while the result is used
     * @return the stack maps with their function symbols, or empty
     * @throws StackMapFormatException if the section is malformed
     * @throws ElfFormatException if the symbols or relocations it needs are
     */
    public static Optional<ObjectStackMaps> read(ElfFile elf) throws StackMapFormatException, ElfFormatException {
        Optional<ElfSection> found = elf.findSection(SECTION_NAME);
        if (found.isEmpty()) {
            return Optional.empty();
        }
        ElfSection section = found.get();
        if (!section.hasFileBytes()) {
            throw new ElfFormatException(0, SECTION_NAME, "the section has no bytes in the file (type " + section.type() + ")");
        }
        MemorySegment bytes = elf.contents(section);
        StackMapSection stackMaps = StackMapSection.parse(bytes, elf.byteOrder());
        ElfSymbol[][] symbols = elf.isRelocatable()
                ? symbolsFromRelocations(elf, section, stackMaps)
                : symbolsFromAddresses(elf, stackMaps);
        return Optional.of(new ObjectStackMaps(elf, section, stackMaps, symbols));
    }

    private static ElfSymbol[][] symbolsFromRelocations(ElfFile elf, ElfSection section, StackMapSection stackMaps)
            throws ElfFormatException {
        List<ElfRelocation> relocations = elf.relocationsFor(section);
        Map<Long, ElfRelocation> byOffset = new HashMap<>();
        for (ElfRelocation r : relocations) {
            byOffset.put(r.offset(), r);
        }
        List<ElfSymbol> symbols = relocations.isEmpty() ? List.of() : elf.symbols(relocationSymbolTable(elf, section));
        ElfSymbol[][] result = new ElfSymbol[stackMaps.stackMaps().size()][];
        for (int m = 0; m < result.length; m++) {
            StackMap map = stackMaps.stackMaps().get(m);
            result[m] = new ElfSymbol[map.functionCount()];
            for (int f = 0; f < map.functionCount(); f++) {
                long fieldOffset = map.function(f).sectionOffset() + FunctionRecord.FUNCTION_ADDRESS;
                ElfRelocation r = byOffset.get(fieldOffset);
                if (r == null) {
                    continue;
                }
                if (r.type() != absolute64(elf)) {
                    throw new ElfFormatException(0, SECTION_NAME + " relocation at offset " + fieldOffset,
                            "relocation type " + r.type() + " for a function address; expected the 64-bit absolute type "
                                    + absolute64(elf));
                }
                if (r.symbolIndex() <= 0 || r.symbolIndex() >= symbols.size()) {
                    throw new ElfFormatException(0, SECTION_NAME + " relocation at offset " + fieldOffset,
                            "symbol index " + r.symbolIndex() + " is outside the symbol table of " + symbols.size());
                }
                result[m][f] = functionAt(symbols, symbols.get(r.symbolIndex()), r.addend());
            }
        }
        return result;
    }

    private static ElfSection relocationSymbolTable(ElfFile elf, ElfSection target) throws ElfFormatException {
        for (ElfSection s : elf.sections()) {
            if (s.type() == ElfSection.SHT_RELA && s.info() == target.index()) {
                return elf.symbolTableOf(s);
            }
        }
        throw new IllegalStateException("relocations found without their section");
    }

    /**
     * The function a relocation names: the symbol itself, or, when LLVM refers to a local
     * function through its section's symbol plus an addend, the function symbol at that offset.
     */
    private static ElfSymbol functionAt(List<ElfSymbol> symbols, ElfSymbol target, long addend) {
        if (target.type() != ElfSymbol.STT_SECTION) {
            return target;
        }
        for (ElfSymbol s : symbols) {
            if (s.isFunction() && s.sectionIndex() == target.sectionIndex() && s.value() == addend) {
                return s;
            }
        }
        return null;
    }

    private static ElfSymbol[][] symbolsFromAddresses(ElfFile elf, StackMapSection stackMaps) throws ElfFormatException {
        Map<Long, ElfSymbol> byAddress = new HashMap<>();
        for (ElfSymbol s : elf.symbols()) {
            if (s.isFunction() && !s.isUndefined()) {
                // Prefer a global name over a local alias at the same address.
                ElfSymbol previous = byAddress.get(s.value());
                if (previous == null || (previous.binding() == ElfSymbol.STB_LOCAL && s.binding() != ElfSymbol.STB_LOCAL)) {
                    byAddress.put(s.value(), s);
                }
            }
        }
        ElfSymbol[][] result = new ElfSymbol[stackMaps.stackMaps().size()][];
        for (int m = 0; m < result.length; m++) {
            StackMap map = stackMaps.stackMaps().get(m);
            result[m] = new ElfSymbol[map.functionCount()];
            for (int f = 0; f < map.functionCount(); f++) {
                result[m][f] = byAddress.get(map.function(f).functionAddress());
            }
        }
        return result;
    }

    private static int absolute64(ElfFile elf) {
        return elf.machine() == ElfFile.EM_AARCH64 ? ElfRelocation.R_AARCH64_ABS64 : ElfRelocation.R_X86_64_64;
    }

    /**
     * The file the stack maps were read from.
     *
     * @return the file given to {@link #read}
     */
    public ElfFile elf() {
        return elf;
    }

    /**
     * The {@code .llvm_stackmaps} section header.
     *
     * @return the first section named {@value #SECTION_NAME}
     */
    public ElfSection section() {
        return section;
    }

    /**
     * The parsed section.
     *
     * @return every stack map in the section, in order
     */
    public StackMapSection stackMaps() {
        return stackMaps;
    }

    /**
     * The symbol of function record {@code functionIndex} of stack map {@code mapIndex}; empty when
     * no symbol names it (a stripped file, or a relocation-less object).
     *
     * @param mapIndex index in {@link StackMapSection#stackMaps()}
     * @param functionIndex index of the function record in that stack map
     * @return the function's symbol, or empty
     * @throws ArrayIndexOutOfBoundsException if either index is out of range
     */
    public Optional<ElfSymbol> functionSymbol(int mapIndex, int functionIndex) {
        return Optional.ofNullable(functionSymbols[mapIndex][functionIndex]);
    }

    @Override
    public String formatName() {
        return elf.formatName();
    }

    @Override
    public String archName() {
        return elf.archName();
    }

    @Override
    public String sectionName() {
        return SECTION_NAME;
    }

    @Override
    public Optional<String> functionName(int mapIndex, int functionIndex) {
        return functionSymbol(mapIndex, functionIndex).map(ElfSymbol::name);
    }

    /**
     * Every function symbol, in stack map and function order; null where none was found.
     *
     * @return a new unmodifiable list, one entry per function record of the section
     */
    public List<ElfSymbol> functionSymbols() {
        List<ElfSymbol> all = new ArrayList<>();
        for (ElfSymbol[] perMap : functionSymbols) {
            all.addAll(java.util.Arrays.asList(perMap));
        }
        return java.util.Collections.unmodifiableList(all);
    }
}
