package dev.safepointkit.stress.patch;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.JJ_Result;

/**
 * Retargeting a stub is one atomic 8-byte store into its slot: a load of the slot that races it
 * sees the old body or the new one, whole, and so does a call through the stub (whose
 * {@code jmp *slot(%rip)} makes the same 8-byte load). The patcher moves g between its two bodies
 * (redefine), whose addresses differ in both 32-bit halves, while the other actor loads the slot
 * (r1: 1 for g_v1, 2 for g_v2, 0 for neither, a torn value) and then calls g(7) through the stub
 * (r2). A torn store seen by the call itself would jump into no body and crash the fork, which
 * fails the run as well.
 */
@JCStressTest
@Outcome(id = {"1, 14", "2, 14", "1, 21", "2, 21"}, expect = ACCEPTABLE,
        desc = "The slot held a whole body's address, and the call ran a whole body (g_v1: 2x, g_v2: 3x).")
@Outcome(id = {"0, .*"}, expect = FORBIDDEN, desc = "The slot held neither body: a torn 8-byte store.")
@Outcome(expect = FORBIDDEN, desc = "Anything else: the call ran no body whole.")
@State
public class StubRetargetRacingCallsTest {
    private static final PatchRaceFixture F = PatchRaceFixture.INSTANCE;
    private static final long V1 = PatchRaceFixture.gOf(F.v1);
    private static final long V2 = PatchRaceFixture.gOf(F.v2);

    @Actor
    public void retarget() {
        try {
            boolean onV1 = F.g.target() == V1;
            F.patcher.redefine("g", onV1 ? F.v2 : F.v1);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Actor
    public void call(JJ_Result r) {
        long slot = F.g.target();
        r.r1 = slot == V1 ? 1 : slot == V2 ? 2 : 0;
        try {
            r.r2 = (long) F.callStub.invokeExact(7L);
        } catch (Throwable t) {
            r.r2 = -1;
        }
    }
}
