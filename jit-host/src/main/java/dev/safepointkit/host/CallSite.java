package dev.safepointkit.host;

/**
 * A place in loaded code that refers to a symbol, as the linker found it: a relocation.
 *
 * @param objectKey the key of the loaded object that holds the site
 * @param section the section of the site, e.g. {@code .text}
 * @param address absolute address of the relocated field (for a call, the rel32 after the opcode)
 * @param type the ELF relocation type, e.g. {@link X86Relocations#R_X86_64_PLT32}
 * @param viaTrampoline whether the site was bound to a {@link FarCallTrampoline} in its own object because
 *     the target was out of rel32 range
 */
public record CallSite(long objectKey, String section, long address, int type, boolean viaTrampoline) {

    /**
     * Whether the site is the rel32 of a direct call or jump: a PLT32 relocation (LLVM uses PC32
     * for data as well, so a PC32 site is not taken to be a branch).
     *
     * @return true for {@link X86Relocations#R_X86_64_PLT32}
     */
    public boolean isBranch() {
        return type == X86Relocations.R_X86_64_PLT32;
    }
}
