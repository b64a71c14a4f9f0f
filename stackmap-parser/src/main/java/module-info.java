/**
 * Decodes LLVM stack maps and the ELF64, Mach-O and COFF objects that carry them.
 *
 * <p>{@code dev.safepointkit.stackmap} is the stack map API (views over a section, statepoint view,
 * symbol resolution for an object file); {@code dev.safepointkit.stackmap.elf} is the ELF reader it
 * stands on, which loaders use as well; {@code .macho} and {@code .coff} read Mach-O and COFF objects; {@code .dwarf} reads {@code .eh_frame} and evaluates its call-frame information. The byte-level reader stays internal.
 */
module dev.safepointkit.stackmap {
    exports dev.safepointkit.stackmap;
    exports dev.safepointkit.stackmap.elf;
    exports dev.safepointkit.stackmap.macho;
    exports dev.safepointkit.stackmap.coff;
    exports dev.safepointkit.stackmap.dwarf;
}
