package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import org.junit.jupiter.api.Test;

/**
 * The reentry saves exactly the extended state components that carry arguments and that the OS
 * enabled, in an area sized as XSAVEC's compacted format lays them out. The expectation comes from
 * the kernel, not from the patcher's probes: {@code arch_prctl(ARCH_GET_XCOMP_SUPP)} gives the
 * state components the kernel enabled in XCR0, and the component sizes are the architecture's
 * (AVX: 16 × 16 bytes, ZMM_Hi256: 16 × 32), which need no 64-byte alignment after 576 + 256.
 */
class ReentryStateTest {
    private static final int SYS_ARCH_PRCTL = 158;
    private static final int ARCH_GET_XCOMP_SUPP = 0x1021;

    @Test
    void theReentrySavesTheEnabledArgumentComponentsInAnAreaOfTheirCompactedSize() throws Throwable {
        // Runs on every processor: with AVX-512 state enabled the mask is 0x46, without it 0x06.
        long enabled = kernelXfeatures();
        assertTrue((enabled & 1L << 1) != 0, "the kernel enables SSE state, which the patcher requires: 0x"
                + Long.toHexString(enabled));

        long expectedMask = enabled & (1L << 1 | 1L << 2 | 1L << 6);
        long expectedSize = 576 + ((expectedMask & 1L << 2) != 0 ? 256 : 0) + ((expectedMask & 1L << 6) != 0 ? 512 : 0);
        if ((enabled & 0b1110_0000) == 0b1110_0000) {
            assertEquals(0x46, expectedMask, "SSE, AVX and ZMM_Hi256; not x87, opmask, zmm16-31 nor any AMX tile state");
        } else if ((enabled & 1L << 2) != 0) {
            assertEquals(0x06, expectedMask, "SSE and AVX; not x87 nor any AMX tile state");
        }
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            StubEntry e = (StubEntry) patcher.declare("f", name -> {
                throw new AssertionError("never called");
            });
            StubBlock.ExtendedState saved = e.block.extendedState();
            assertEquals(expectedMask, saved.mask(), "the reentry's xsavec/xrstor mask");
            assertEquals(expectedSize, saved.size(), "the reentry's save area");
        }
    }

    /** The xfeatures the kernel enabled for this process (its XCR0), asked through arch_prctl. */
    private static long kernelXfeatures() throws Throwable {
        MethodHandle syscall = Linker.nativeLinker().downcallHandle(Linker.nativeLinker().defaultLookup().findOrThrow("syscall"),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_LONG);
            long rc = (long) syscall.invokeExact((long) SYS_ARCH_PRCTL, (long) ARCH_GET_XCOMP_SUPP, out);
            assertEquals(0, rc, "arch_prctl(ARCH_GET_XCOMP_SUPP)");
            return out.get(ValueLayout.JAVA_LONG, 0);
        }
    }
}
