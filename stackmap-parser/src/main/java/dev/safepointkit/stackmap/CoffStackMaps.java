package dev.safepointkit.stackmap;

import dev.safepointkit.stackmap.coff.CoffFile;
import dev.safepointkit.stackmap.coff.CoffRelocation;
import dev.safepointkit.stackmap.coff.CoffSection;
import dev.safepointkit.stackmap.coff.CoffSymbol;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The stack maps of one COFF object ({@code .llvm_stackmaps}), each function record tied to its
 * function's symbol through the section's relocations (the addend is the value stored in the
 * field: a function named through its section's symbol is found at that offset).
 *
 * <p>Immutable; safe to share between threads while the file's memory stays valid and unwritten.
 */
public final class CoffStackMaps extends NamedStackMaps {
    /** The section LLVM writes stack maps to in COFF objects. */
    public static final String SECTION_NAME = ".llvm_stackmaps";

    private final CoffFile file;
    private CoffStackMaps(CoffFile file, StackMapSection stackMaps, String[][] names) {
        super(stackMaps, names);
        this.file = file;
    }

    /**
     * Reads the stack maps of {@code file}; empty when it has no {@code .llvm_stackmaps} section.
     *
     * @param file the object; its image must stay valid and unwritten while the result is used
     * @return the stack maps with their function names, or empty
     * @throws StackMapFormatException if the section is malformed
     * @throws ObjectFormatException if it has no bytes in the file, or a relocation of a function
     *     address is not the machine's 64-bit absolute type
     */
    public static Optional<CoffStackMaps> read(CoffFile file) throws StackMapFormatException, ObjectFormatException {
        Optional<CoffSection> found = file.findSection(SECTION_NAME);
        if (found.isEmpty()) {
            return Optional.empty();
        }
        CoffSection section = found.get();
        if (!section.hasFileBytes()) {
            throw new ObjectFormatException("COFF", 0, SECTION_NAME, "an uninitialized-data section has no stack maps");
        }
        StackMapSection stackMaps = StackMapSection.parse(file.contents(section), ByteOrder.LITTLE_ENDIAN);
        Map<Long, CoffRelocation> byAddress = new HashMap<>();
        for (CoffRelocation r : file.relocations(section)) {
            byAddress.put(r.address(), r);
        }
        int absolute64 = file.machine() == CoffFile.IMAGE_FILE_MACHINE_AMD64
                ? CoffRelocation.IMAGE_REL_AMD64_ADDR64 : CoffRelocation.IMAGE_REL_ARM64_ADDR64;
        String[][] names = FunctionNames.perFunction(stackMaps);
        FunctionNames.fill(stackMaps, names, (function, fieldOffset) -> {
            CoffRelocation r = byAddress.get(fieldOffset);
            if (r == null) {
                return null;
            }
            if (r.type() != absolute64) {
                throw new ObjectFormatException("COFF", 0, SECTION_NAME + " relocation at offset " + fieldOffset,
                        "type " + r.type() + " for a function address; expected the 64-bit absolute type " + absolute64);
            }
            CoffSymbol target = file.symbolAt(r.symbolIndex()).orElseThrow();
            return target.isFunction() ? target.name() : functionAt(file, target.section(), function.functionAddress());
        });
        return Optional.of(new CoffStackMaps(file, stackMaps, names));
    }

    /** The function defined in {@code section} at {@code offset}, when a section symbol plus addend names it. */
    private static String functionAt(CoffFile file, int section, long offset) {
        for (CoffSymbol s : file.symbols()) {
            if (s.isFunction() && s.section() == section && s.value() == offset) {
                return s.name();
            }
        }
        return null;
    }

    /**
     * The object the stack maps were read from.
     *
     * @return the file given to {@link #read}
     */
    public CoffFile file() {
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
        return SECTION_NAME;
    }
}
