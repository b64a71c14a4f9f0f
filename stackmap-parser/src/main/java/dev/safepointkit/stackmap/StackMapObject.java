package dev.safepointkit.stackmap;

import dev.safepointkit.stackmap.coff.CoffFile;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.macho.MachOFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * The stack maps of one object file of any format this module reads (ELF, Mach-O, COFF), each
 * function record tied to its function's name where the file says it.
 *
 * <p>Implementations are immutable and safe to share between threads while the file's memory
 * stays valid and unwritten.
 */
public sealed interface StackMapObject permits ObjectStackMaps, NamedStackMaps {

    /**
     * Reads the stack maps of an ELF, Mach-O or COFF file, told apart by their first bytes.
     *
     * @param image the whole file; it must stay valid and unwritten while the result is used
     * @return the stack maps, or empty when the file has no stack map section
     * @throws IOException a {@link StackMapFormatException} if the section is malformed, an
     *     {@link dev.safepointkit.stackmap.elf.ElfFormatException} or {@link ObjectFormatException}
     *     if the file around it is, or an {@link ObjectFormatException} if the file is none of the three
     */
    static Optional<? extends StackMapObject> read(MemorySegment image) throws IOException {
        if (ElfFile.hasMagic(image)) {
            return ObjectStackMaps.read(ElfFile.parse(image));
        }
        if (MachOFile.hasMagic(image)) {
            return MachOStackMaps.read(MachOFile.parse(image));
        }
        if (CoffFile.hasKnownMachine(image)) {
            return CoffStackMaps.read(CoffFile.parse(image));
        }
        throw new ObjectFormatException("object file", 0, "magic",
                "not an ELF or Mach-O file, nor a COFF object for AMD64 or ARM64");
    }

    /**
     * The file format, as {@code llvm-readobj} names it.
     *
     * @return e.g. {@code elf64-x86-64}, {@code Mach-O arm64}, {@code COFF-x86-64}
     */
    String formatName();

    /**
     * The architecture, as {@code llvm-readobj} names it.
     *
     * @return {@code x86_64} or {@code aarch64} (or {@code aarch64_be} for big-endian ELF)
     */
    String archName();

    /**
     * Where the stack maps were found, as {@code llvm-readobj} names the section.
     *
     * @return e.g. {@code .llvm_stackmaps} or {@code __LLVM_STACKMAPS,__llvm_stackmaps}
     */
    String sectionName();

    /**
     * The parsed stack map section.
     *
     * @return every stack map in the section, in order
     */
    StackMapSection stackMaps();

    /**
     * The name of the function of function record {@code functionIndex} of stack map
     * {@code mapIndex}, as the file's symbol table spells it.
     *
     * @param mapIndex index in {@link StackMapSection#stackMaps()}
     * @param functionIndex index of the function record in that stack map
     * @return the name, or empty when nothing in the file names the function
     * @throws ArrayIndexOutOfBoundsException if either index is out of range
     */
    Optional<String> functionName(int mapIndex, int functionIndex);
}
