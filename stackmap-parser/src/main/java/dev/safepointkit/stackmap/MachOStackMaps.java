package dev.safepointkit.stackmap;

import dev.safepointkit.stackmap.macho.MachOFile;
import dev.safepointkit.stackmap.macho.MachORelocation;
import dev.safepointkit.stackmap.macho.MachOSection;
import dev.safepointkit.stackmap.macho.MachOSymbol;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The stack maps of one Mach-O file ({@code __LLVM_STACKMAPS,__llvm_stackmaps}), each function
 * record tied to its function's symbol: through the section's relocations in an object file
 * (MH_OBJECT, where the addresses hold 0 or a section-relative address), by address otherwise.
 *
 * <p>Immutable; safe to share between threads while the file's memory stays valid and unwritten.
 */
public final class MachOStackMaps extends NamedStackMaps {
    /** The segment LLVM writes stack maps to. */
    public static final String SEGMENT_NAME = "__LLVM_STACKMAPS";
    /** The section LLVM writes stack maps to, in {@link #SEGMENT_NAME}. */
    public static final String SECTION_NAME = "__llvm_stackmaps";

    private final MachOFile file;
    private MachOStackMaps(MachOFile file, StackMapSection stackMaps, String[][] names) {
        super(stackMaps, names);
        this.file = file;
    }

    /**
     * Reads the stack maps of {@code file}; empty when it has no stack map section.
     *
     * @param file the file; its image must stay valid and unwritten while the result is used
     * @return the stack maps with their function names, or empty
     * @throws StackMapFormatException if the section is malformed
     * @throws ObjectFormatException if it has no bytes in the file, or a relocation of a function
     *     address is not a 64-bit absolute one or names no function
     */
    public static Optional<MachOStackMaps> read(MachOFile file) throws StackMapFormatException, ObjectFormatException {
        Optional<MachOSection> found = file.findSection(SEGMENT_NAME, SECTION_NAME);
        if (found.isEmpty()) {
            return Optional.empty();
        }
        MachOSection section = found.get();
        if (!section.hasFileBytes()) {
            throw new ObjectFormatException("Mach-O", 0, SEGMENT_NAME + "," + SECTION_NAME, "a zero-fill section has no stack maps");
        }
        StackMapSection stackMaps = StackMapSection.parse(file.contents(section), ByteOrder.LITTLE_ENDIAN);
        String[][] names = FunctionNames.perFunction(stackMaps);
        if (file.fileType() == MachOFile.MH_OBJECT) {
            Map<Long, MachORelocation> byAddress = new HashMap<>();
            for (MachORelocation r : file.relocations(section)) {
                byAddress.put(r.address(), r);
            }
            FunctionNames.fill(stackMaps, names, (function, fieldOffset) -> {
                MachORelocation r = byAddress.get(fieldOffset);
                return r == null ? null : nameOf(file, r, function.functionAddress(), fieldOffset);
            });
        } else {
            Map<Long, String> byValue = new HashMap<>();
            for (MachOSymbol s : file.symbols()) {
                if (s.isDefinedInSection()) {
                    byValue.putIfAbsent(s.value(), s.name());
                }
            }
            FunctionNames.fill(stackMaps, names, (function, fieldOffset) -> byValue.get(function.functionAddress()));
        }
        return Optional.of(new MachOStackMaps(file, stackMaps, names));
    }

    /**
     * The symbol a relocation of a function address names: the symbol itself when external, else
     * the symbol defined in the relocation's section at the address stored in the field.
     */
    private static String nameOf(MachOFile file, MachORelocation r, long stored, long fieldOffset) throws ObjectFormatException {
        String field = SECTION_NAME + " relocation at offset " + fieldOffset;
        if (r.type() != MachORelocation.RELOC_UNSIGNED || r.lengthLog2() != 3 || r.pcRelative()) {
            throw new ObjectFormatException("Mach-O", 0, field, "type " + r.type() + ", length 2^" + r.lengthLog2()
                    + (r.pcRelative() ? ", PC-relative" : "") + " for a function address; expected an absolute 8-byte UNSIGNED");
        }
        if (r.external()) {
            return file.symbols().get(r.symbolOrSection()).name();
        }
        for (MachOSymbol s : file.symbols()) {
            if (s.isDefinedInSection() && s.section() == r.symbolOrSection() && s.value() == stored) {
                return s.name();
            }
        }
        return null;
    }

    /**
     * The file the stack maps were read from.
     *
     * @return the file given to {@link #read}
     */
    public MachOFile file() {
        return file;
    }

    @Override
    public String formatName() {
        return file.formatName();
    }

    @Override
    public String archName() {
        return file.archName();
    }

    @Override
    public String sectionName() {
        return SEGMENT_NAME + "," + SECTION_NAME;
    }
}
