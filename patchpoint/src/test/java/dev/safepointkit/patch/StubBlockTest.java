package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The processor checks a stub block makes before it runs xgetbv or reads CPUID leaf 0xD. */
class StubBlockTest {
    /** CPUID as the probe returns it: ecx in the high half, eax in the low. */
    private static long cpuid(long ecx, long eax) {
        return ecx << 32 | eax;
    }

    private static final long OSXSAVE = 1L << 27;

    @Test
    void aProcessorWithoutLeaf0xDOrAnOsWithoutXsaveIsRefusedClearly() {
        IllegalStateException noLeaf = assertThrows(IllegalStateException.class,
                () -> StubBlock.requireXsaveEnabled(cpuid(0, 0xB), cpuid(OSXSAVE, 0)));
        assertTrue(noLeaf.getMessage().contains("maximum basic leaf is 0xb"), noLeaf.getMessage());
        IllegalStateException noOsxsave = assertThrows(IllegalStateException.class,
                () -> StubBlock.requireXsaveEnabled(cpuid(0, 0x16), cpuid(OSXSAVE - 1 | 1L << 26, 0)));
        assertTrue(noOsxsave.getMessage().contains("OSXSAVE"), noOsxsave.getMessage());
        assertDoesNotThrow(() -> StubBlock.requireXsaveEnabled(cpuid(0x6c65746e, 0xD), cpuid(OSXSAVE, 0x806c1)));
    }

    @Test
    void onlyTheProcesssFirstBlockRunsTheProbesAndEveryBlockSavesTheSame() {
        StubBlock first = new StubBlock(0, 0x1000);
        int probes = StubBlock.PROBES.get();
        assertTrue(probes >= 1, "some block probed");
        StubBlock second = new StubBlock(StubBlock.CAPACITY, 0x1000);
        try {
            assertEquals(probes, StubBlock.PROBES.get(), "a later block reuses what the first found");
            assertEquals(first.extendedState(), second.extendedState());
        } finally {
            second.free();
            first.free();
        }
    }
}
