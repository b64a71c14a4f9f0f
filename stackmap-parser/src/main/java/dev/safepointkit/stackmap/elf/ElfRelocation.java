package dev.safepointkit.stackmap.elf;

/**
 * One RELA relocation entry: patch {@code offset} of the target section with a value of
 * {@code type} computed from symbol {@code symbolIndex} and {@code addend}.
 *
 * @param offset {@code r_offset}: in a relocatable object, from the start of the section it applies to
 * @param type the machine-specific relocation type (for example R_X86_64_64 = 1, R_AARCH64_ABS64 = 257)
 * @param symbolIndex index into the relocation section's symbol table; 0 for none
 * @param addend {@code r_addend}: the constant added to the symbol's value
 */
public record ElfRelocation(long offset, int type, int symbolIndex, long addend) {
    public static final int R_X86_64_64 = 1;
    public static final int R_AARCH64_ABS64 = 257;
}
