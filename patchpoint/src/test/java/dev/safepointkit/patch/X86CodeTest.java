package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.testing.LlvmTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The patcher's instruction bytes, checked against LLVM's own disassembler. */
class X86CodeTest {

    /** llvm-mc's disassembly of {@code code}: one instruction per line, tabs as spaces. */
    private static List<String> disassemble(byte[] code) throws Exception {
        Path mc = LlvmTools.require("llvm-mc-19");
        StringBuilder input = new StringBuilder();
        for (byte b : code) {
            input.append(String.format("0x%02x ", b));
        }
        Process p = new ProcessBuilder(mc.toString(), "--disassemble", "-triple=x86_64-unknown-linux-gnu")
                .redirectErrorStream(true).start();
        p.getOutputStream().write(input.toString().getBytes(StandardCharsets.US_ASCII));
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        List<String> lines = new ArrayList<>();
        for (String line : out.split("\n")) {
            String t = line.replaceAll("#.*", "").strip().replaceAll("\\s+", " ");
            if (!t.isEmpty() && !t.startsWith(".") && !t.startsWith("#")) {
                lines.add(t);
            }
        }
        assertFalse(out.contains("invalid"), out);
        return lines;
    }

    @Test
    void theReentrySavesEveryArgumentRegisterAndTheArgumentComponentsOfTheExtendedStateAndJumpsWhereTheResolverSays()
            throws Exception {
        // SSE, AVX and ZMM_Hi256 (mask 0x46) in 1,346 bytes: the area is rounded up to 64.
        List<String> asm = disassemble(StubBlock.reentry(0x1122334455667788L, new StubBlock.ExtendedState(0x46, 1346)));
        List<String> expected = new ArrayList<>(List.of("pushq %rbp", "movq %rsp, %rbp", "pushq %rdi", "pushq %rsi",
                "pushq %rdx", "pushq %rcx", "pushq %r8", "pushq %r9", "pushq %rax", "pushq %r10", "pushq %rbx",
                "subq $1408, %rsp", "andq $-64, %rsp", "xorl %eax, %eax"));
        for (int q = 0; q < 8; q++) {
            expected.add("movq %rax, " + (512 + 8 * q) + "(%rsp)");
        }
        expected.addAll(List.of("movl $70, %eax", "movl $0, %edx", "xsavec64 (%rsp)",
                "movq %r11, %rdi", "movabsq $1234605616436508552, %rax", "callq *%rax", "movq %rax, %r11",
                "movl $70, %eax", "movl $0, %edx", "xrstor64 (%rsp)", "leaq -72(%rbp), %rsp",
                "popq %rbx", "popq %r10", "popq %rax", "popq %r9", "popq %r8", "popq %rcx",
                "popq %rdx", "popq %rsi", "popq %rdi", "popq %rbp", "jmpq *%r11"));
        assertEquals(expected, asm);
    }

    @Test
    void theSledCallFormIsMovabsAndAnIndirectCall() throws Exception {
        byte[] call = X86Code.sledCall(0xDEADBEEFL);
        assertEquals(List.of("movabsq $3735928559, %r11", "callq *%r11"), disassemble(call));
        assertTrue(X86Code.isSledCall(call));
        assertEquals(0xDEADBEEFL, X86Code.sledCallTarget(call));
    }

    @Test
    void nopsOfEveryLengthDecodeAsNopsWithAnInstructionEndingAt13() throws Exception {
        for (int n = 1; n <= 40; n++) {
            byte[] nops = X86Code.nops(n);
            assertEquals(n, nops.length);
            assertEquals(n, X86Code.nopRun(nops, 0), "length " + n);
            if (n >= 13) {
                assertEquals(13, X86Code.nopRun(java.util.Arrays.copyOf(nops, 13), 0));
                assertTrue(X86Code.nopLength(nops, 13) > 0 || n == 13, "an instruction starts at 13");
            }
        }
        for (String line : disassemble(X86Code.nops(29))) {
            assertTrue(line.startsWith("nop"), line);
        }
    }

    @Test
    void llvmSledNopsAreDecoded() {
        // What llc 19 wrote for a 16-byte sled: cs nopw 0x200(%rax,%rax) (10 bytes), nopw 8(%rax,%rax) (6).
        byte[] llc = {0x2e, 0x66, 0x0f, 0x1f, (byte) 0x84, 0x00, 0x00, 0x02, 0x00, 0x00, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x08,
                0x48, (byte) 0x8b, 0x03};
        assertEquals(10, X86Code.nopLength(llc, 0));
        assertEquals(6, X86Code.nopLength(llc, 10));
        assertEquals(16, X86Code.nopRun(llc, 0), "stops at the mov after the sled");
        assertEquals(1, X86Code.nopLength(new byte[] {(byte) 0x90}, 0));
        assertEquals(0, X86Code.nopLength(new byte[] {0x0f, 0x1f}, 0), "truncated");
        assertEquals(0, X86Code.nopLength(new byte[] {0x0f, 0x1f, (byte) 0x88, 0, 0, 0, 0}, 0), "0F 1F /1 is no NOP");
    }
}
