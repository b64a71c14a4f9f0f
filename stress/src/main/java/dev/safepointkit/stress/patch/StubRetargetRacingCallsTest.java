package dev.safepointkit.stress.patch;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.J_Result;

/**
 * Retargeting a stub is one atomic 8-byte store into its slot: a call through the stub that
 * races it runs the old body or the new one, whole. The patcher moves g between its two bodies
 * (redefine) while the caller calls g(7) through the stub.
 */
@JCStressTest
@Outcome(id = "14", expect = ACCEPTABLE, desc = "The call ran g_v1 (2x).")
@Outcome(id = "21", expect = ACCEPTABLE, desc = "The call ran g_v2 (3x).")
@Outcome(expect = FORBIDDEN, desc = "Anything else: the call jumped through a torn or stale-and-freed slot.")
@State
public class StubRetargetRacingCallsTest {
    private static final PatchRaceFixture F = PatchRaceFixture.INSTANCE;

    @Actor
    public void retarget() {
        try {
            boolean onV1 = F.g.target() == F.v1.loaded().symbol("g").orElseThrow().address();
            F.patcher.redefine("g", onV1 ? F.v2 : F.v1);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Actor
    public void call(J_Result r) {
        try {
            r.r1 = (long) F.callStub.invokeExact(7L);
        } catch (Throwable t) {
            r.r1 = -1;
        }
    }
}
