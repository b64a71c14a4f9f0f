package dev.safepointkit.patch;

import java.io.ByteArrayOutputStream;

/**
 * The few x86-64 instructions the patcher writes, and the decoding it needs: rel32 branches,
 * the patchpoint call form, and LLVM's NOP sleds.
 */
final class X86Code {
    static final int CALL_REL32 = 0xE8;
    static final int JMP_REL32 = 0xE9;
    /** {@code movabs $imm64, %r11; call *%r11}: the call form of a patchpoint sled. */
    static final int SLED_CALL_SIZE = 13;
    /** Offset of the imm64 inside the sled's call form. */
    static final int SLED_TARGET_OFFSET = 2;

    private X86Code() {
    }

    /** {@code movabs $target, %r11; call *%r11}. */
    static byte[] sledCall(long target) {
        byte[] b = new byte[SLED_CALL_SIZE];
        b[0] = 0x49;
        b[1] = (byte) 0xBB;
        putLong(b, SLED_TARGET_OFFSET, target);
        b[10] = 0x41;
        b[11] = (byte) 0xFF;
        b[12] = (byte) 0xD3;
        return b;
    }

    /** Whether {@code code} starts with the sled call form; its target is then {@link #sledCallTarget}. */
    static boolean isSledCall(byte[] code) {
        return code.length >= SLED_CALL_SIZE && code[0] == 0x49 && code[1] == (byte) 0xBB && code[10] == 0x41
                && code[11] == (byte) 0xFF && code[12] == (byte) 0xD3;
    }

    static long sledCallTarget(byte[] code) {
        return getLong(code, SLED_TARGET_OFFSET);
    }

    /**
     * {@code length} bytes of multi-byte NOPs. When the length allows, an instruction ends at
     * {@link #SLED_CALL_SIZE}: the return address of the call form stays an instruction
     * boundary whichever form the sled has, so a thread returning into a rewritten sled lands on
     * an instruction.
     */
    static byte[] nops(int length) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(length);
        int left = length;
        if (length >= SLED_CALL_SIZE) {
            out.writeBytes(nop(8));
            out.writeBytes(nop(5));
            left -= SLED_CALL_SIZE;
        }
        while (left > 0) {
            int n = Math.min(left, 8);
            out.writeBytes(nop(n));
            left -= n;
        }
        return out.toByteArray();
    }

    /** The recommended NOP of 1 to 8 bytes. */
    static byte[] nop(int n) {
        return switch (n) {
            case 1 -> new byte[] {(byte) 0x90};
            case 2 -> new byte[] {0x66, (byte) 0x90};
            case 3 -> new byte[] {0x0F, 0x1F, 0x00};
            case 4 -> new byte[] {0x0F, 0x1F, 0x40, 0x00};
            case 5 -> new byte[] {0x0F, 0x1F, 0x44, 0x00, 0x00};
            case 6 -> new byte[] {0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00};
            case 7 -> new byte[] {0x0F, 0x1F, (byte) 0x80, 0x00, 0x00, 0x00, 0x00};
            case 8 -> new byte[] {0x0F, 0x1F, (byte) 0x84, 0x00, 0x00, 0x00, 0x00, 0x00};
            default -> throw new IllegalArgumentException("no single NOP of " + n + " bytes");
        };
    }

    /**
     * The length of the NOP instruction at {@code code[at]}, or 0 if none starts there: 0x90,
     * and {@code 0F 1F /0} with any run of 0x66 and 0x2E prefixes, which covers every NOP LLVM
     * writes into a sled.
     */
    static int nopLength(byte[] code, int at) {
        int i = at;
        while (i < code.length && (code[i] == 0x66 || code[i] == 0x2E)) {
            i++;
        }
        if (i >= code.length) {
            return 0;
        }
        if (code[i] == (byte) 0x90) {
            return i + 1 - at;
        }
        if (i + 2 >= code.length || code[i] != 0x0F || code[i + 1] != 0x1F) {
            return 0;
        }
        int modrm = Byte.toUnsignedInt(code[i + 2]);
        if ((modrm >> 3 & 7) != 0) {
            return 0;
        }
        int length = i + 3 - at + modrmTail(code, i + 2);
        return at + length <= code.length ? length : 0;
    }

    /** Bytes after a ModRM byte: SIB and displacement. */
    private static int modrmTail(byte[] code, int modrmAt) {
        int modrm = Byte.toUnsignedInt(code[modrmAt]);
        int mod = modrm >> 6;
        int rm = modrm & 7;
        if (mod == 3) {
            return 0;
        }
        int sib = rm == 4 ? 1 : 0;
        int disp = switch (mod) {
            case 0 -> {
                if (rm == 5) {
                    yield 4;
                }
                yield sib == 1 && modrmAt + 1 < code.length && (code[modrmAt + 1] & 7) == 5 ? 4 : 0;
            }
            case 1 -> 1;
            default -> 4;
        };
        return sib + disp;
    }

    /** The length of the run of NOPs at the start of {@code code}, in whole instructions. */
    static int nopRun(byte[] code, int from) {
        int at = from;
        int n;
        while (at < code.length && (n = nopLength(code, at)) > 0) {
            at += n;
        }
        return at - from;
    }

    static void putLong(byte[] b, int at, long v) {
        for (int i = 0; i < 8; i++) {
            b[at + i] = (byte) (v >>> (8 * i));
        }
    }

    static long getLong(byte[] b, int at) {
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = v << 8 | Byte.toUnsignedLong(b[at + i]);
        }
        return v;
    }

    static void putInt(byte[] b, int at, int v) {
        for (int i = 0; i < 4; i++) {
            b[at + i] = (byte) (v >>> (8 * i));
        }
    }

    static int getInt(byte[] b, int at) {
        return (b[at] & 0xFF) | (b[at + 1] & 0xFF) << 8 | (b[at + 2] & 0xFF) << 16 | (b[at + 3] & 0xFF) << 24;
    }

    /** The first {@code b.length <= 8} bytes of {@code b} as a little-endian long. */
    static long toLong(byte[] b) {
        long v = 0;
        for (int i = b.length - 1; i >= 0; i--) {
            v = v << 8 | Byte.toUnsignedLong(b[i]);
        }
        return v;
    }

    /** The low {@code length <= 8} bytes of {@code v}, little endian. */
    static byte[] fromLong(long v, int length) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (v >>> (8 * i));
        }
        return b;
    }

    /** A {@code call}/{@code jmp rel32} ({@code opcode}, then {@code disp}) as the long {@link #toLong} gives for its 5 bytes. */
    static long branchBytes(byte opcode, int disp) {
        return Byte.toUnsignedLong(opcode) | Integer.toUnsignedLong(disp) << 8;
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder(b.length * 3);
        for (byte x : b) {
            if (!s.isEmpty()) {
                s.append(' ');
            }
            s.append(String.format("%02x", x));
        }
        return s.toString();
    }
}
