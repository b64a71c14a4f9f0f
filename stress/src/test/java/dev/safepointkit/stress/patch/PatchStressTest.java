package dev.safepointkit.stress.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The bounded patching stress: 8 x 10^7 calls of g through patched sites (and as many sled runs) on
 * two threads while another thread relinks, retargets, rewrites and redefines. jcstress does not
 * fit here: its actors share nothing but a small state object, and a loaded object with its stubs
 * cannot be made per state.
 */
class PatchStressTest {

    @Test
    void tenMillionCallsWhileRelinkingRetargetingAndRedefiningSeeOnlyAllowedResults() throws Exception {
        PatchStress.Result r = PatchStress.run(2, 20_000_000);
        System.out.println("patch stress: " + r.summary());
        assertEquals(java.util.List.of(), r.failures());
        long[] c = r.counts();
        assertEquals(0, c[PatchStress.G_WRONG], "g returned neither 2x nor 3x");
        assertEquals(0, c[PatchStress.SLED_WRONG], "a sled gave a value no form of it can");
        assertEquals(r.gCalls(), c[PatchStress.G_TIMES_2] + c[PatchStress.G_TIMES_3], "every call of g counted");
        assertEquals(r.sledCalls(), c[PatchStress.SLED_0] + c[PatchStress.SLED_1] + c[PatchStress.SLED_2]);
        assertTrue(r.gCalls() >= 10_000_000);
        // The patching really overlapped the calls: both bodies and every sled form ran.
        assertTrue(c[PatchStress.G_TIMES_2] > 0 && c[PatchStress.G_TIMES_3] > 0, r.summary());
        assertTrue(c[PatchStress.SLED_0] > 0 && c[PatchStress.SLED_1] > 0 && c[PatchStress.SLED_2] > 0, r.summary());
        assertTrue(r.rounds() >= 2, r.summary());
        assertEquals(1, r.lazyCompiles(), "g compiled lazily once; later bodies are redefinitions");
        assertTrue(r.freed() >= r.redefinitions() - 1, "old bodies freed at safepoints: " + r.summary());
    }
}
