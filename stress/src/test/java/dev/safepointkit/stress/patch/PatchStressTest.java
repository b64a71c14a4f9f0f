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
        int threads = 2;
        long iterationsPerThread = 20_000_000;
        PatchStress.Result r = PatchStress.run(threads, iterationsPerThread);
        System.out.println("patch stress: " + r.summary());
        assertEquals(java.util.List.of(), r.failures());
        long[] c = r.counts();
        assertEquals(0, c[PatchStress.G_WRONG], "g returned neither 2x nor 3x");
        assertEquals(0, c[PatchStress.SLED_WRONG], "a sled gave a value no form of it can");
        // Counted by the code itself: two calls of g and two sled runs per iteration, none lost.
        assertEquals(2 * threads * iterationsPerThread, r.gCalls(), "every call of g counted: " + r.summary());
        assertEquals(2 * threads * iterationsPerThread, r.sledCalls(), "every sled run counted: " + r.summary());
        assertTrue(r.gCalls() >= 80_000_000, r.summary());
        // The patching really overlapped the calls: both bodies and every sled form ran.
        assertTrue(c[PatchStress.G_TIMES_2] > 0 && c[PatchStress.G_TIMES_3] > 0, r.summary());
        assertTrue(c[PatchStress.SLED_0] > 0 && c[PatchStress.SLED_1] > 0 && c[PatchStress.SLED_2] > 0, r.summary());
        assertTrue(r.rounds() >= 2, r.summary());
        assertEquals(1, r.lazyCompiles(), "g compiled lazily once; later bodies are redefinitions");
        assertEquals(r.redefinitions(), r.freed(), "every old body freed, the last once no thread runs: " + r.summary());
    }
}
