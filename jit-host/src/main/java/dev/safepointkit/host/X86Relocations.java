package dev.safepointkit.host;

/**
 * The x86-64 ELF relocation types the host applies, with their names for messages. In the formulas
 * (the psABI's), S is the symbol's address, A the addend and P the address of the relocated field.
 * An object with any other type fails to load. Constants only; thread safe.
 */
public final class X86Relocations {
    /** No relocation: the field is left as it is. */
    public static final int R_X86_64_NONE = 0;
    /** 64-bit absolute, S + A. */
    public static final int R_X86_64_64 = 1;
    /** 32-bit signed PC-relative, S + A - P; LLVM uses it for code and data references alike. */
    public static final int R_X86_64_PC32 = 2;
    /**
     * The rel32 of a {@code call} or {@code jmp}, S + A - P. The host has no PLT: it binds the site
     * to the symbol itself, or, for an undefined symbol out of rel32 range, to a
     * {@link FarCallTrampoline} in the object ({@link CallSite#viaTrampoline}).
     */
    public static final int R_X86_64_PLT32 = 4;
    /** 32-bit signed PC-relative offset to the symbol's slot in the object's GOT, which the host builds. */
    public static final int R_X86_64_GOTPCREL = 9;
    /**
     * 32-bit absolute, zero-extended, S + A: the host then maps the object in the low 2 GiB
     * ({@code MAP_32BIT}), and fails the load if a value does not fit.
     */
    public static final int R_X86_64_32 = 10;
    /** 32-bit absolute, sign-extended, S + A: the host maps the object low, as for {@link #R_X86_64_32}. */
    public static final int R_X86_64_32S = 11;
    /** 64-bit PC-relative, S + A - P. */
    public static final int R_X86_64_PC64 = 24;
    /** {@link #R_X86_64_GOTPCREL} that a linker may relax; the host never relaxes, it goes through the GOT. */
    public static final int R_X86_64_GOTPCRELX = 41;
    /** {@link #R_X86_64_GOTPCRELX} for an instruction with a REX prefix; applied the same way. */
    public static final int R_X86_64_REX_GOTPCRELX = 42;

    private X86Relocations() {
    }

    /**
     * The type's name, for messages.
     *
     * @param type an ELF relocation type, any value
     * @return its psABI name, e.g. {@code R_X86_64_PLT32} (the names of some types the host does not
     *     apply too), or {@code type N} for one this class has no name for
     */
    public static String name(int type) {
        return switch (type) {
            case R_X86_64_NONE -> "R_X86_64_NONE";
            case R_X86_64_64 -> "R_X86_64_64";
            case R_X86_64_PC32 -> "R_X86_64_PC32";
            case 3 -> "R_X86_64_GOT32";
            case R_X86_64_PLT32 -> "R_X86_64_PLT32";
            case 5 -> "R_X86_64_COPY";
            case 8 -> "R_X86_64_RELATIVE";
            case R_X86_64_GOTPCREL -> "R_X86_64_GOTPCREL";
            case R_X86_64_32 -> "R_X86_64_32";
            case R_X86_64_32S -> "R_X86_64_32S";
            case 12 -> "R_X86_64_16";
            case 13 -> "R_X86_64_PC16";
            case 14 -> "R_X86_64_8";
            case 15 -> "R_X86_64_PC8";
            case 19 -> "R_X86_64_TLSGD";
            case 20 -> "R_X86_64_TLSLD";
            case 21 -> "R_X86_64_DTPOFF32";
            case 22 -> "R_X86_64_GOTTPOFF";
            case 23 -> "R_X86_64_TPOFF32";
            case R_X86_64_PC64 -> "R_X86_64_PC64";
            case 25 -> "R_X86_64_GOTOFF64";
            case 26 -> "R_X86_64_GOTPC32";
            case R_X86_64_GOTPCRELX -> "R_X86_64_GOTPCRELX";
            case R_X86_64_REX_GOTPCRELX -> "R_X86_64_REX_GOTPCRELX";
            default -> "type " + type;
        };
    }

    static boolean usesGot(int type) {
        return type == R_X86_64_GOTPCREL || type == R_X86_64_GOTPCRELX || type == R_X86_64_REX_GOTPCRELX;
    }

    static boolean needsLowAddresses(int type) {
        return type == R_X86_64_32 || type == R_X86_64_32S;
    }

    static boolean isSupported(int type) {
        return switch (type) {
            case R_X86_64_NONE, R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_GOTPCREL, R_X86_64_32,
                    R_X86_64_32S, R_X86_64_PC64, R_X86_64_GOTPCRELX, R_X86_64_REX_GOTPCRELX -> true;
            default -> false;
        };
    }
}
