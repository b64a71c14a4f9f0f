package dev.safepointkit.host;

/** The x86-64 ELF relocation types the host applies, with their names for messages. */
public final class X86Relocations {
    public static final int R_X86_64_NONE = 0;
    public static final int R_X86_64_64 = 1;
    public static final int R_X86_64_PC32 = 2;
    public static final int R_X86_64_PLT32 = 4;
    public static final int R_X86_64_GOTPCREL = 9;
    public static final int R_X86_64_32 = 10;
    public static final int R_X86_64_32S = 11;
    public static final int R_X86_64_PC64 = 24;
    public static final int R_X86_64_GOTPCRELX = 41;
    public static final int R_X86_64_REX_GOTPCRELX = 42;

    private X86Relocations() {
    }

    /** The type's name, e.g. {@code R_X86_64_PLT32}, or {@code type N} for one the host does not know. */
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
