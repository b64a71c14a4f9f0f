package dev.safepointkit.stress.patch;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.J_Result;

/**
 * Relinking an aligned call site is one atomic 4-byte store of its rel32 through the code's
 * alias; the core-serializing membarrier it owes is not made per relink but paid later (before
 * any code is unmapped, at the next stop, or on demand; docs/patching.md, "The owed barrier"): a
 * call from the site that races the store goes through the stub or straight to the body, and
 * either way runs g. The patcher relinks and unlinks g while
 * the caller runs f2(5) = g(5) + 1 from f2's aligned site.
 */
@JCStressTest
@Outcome(id = "11", expect = ACCEPTABLE, desc = "The call reached g's body, through the stub or directly.")
@Outcome(expect = FORBIDDEN, desc = "Anything else: the call decoded a torn displacement.")
@State
public class RelinkRacingCallsTest {
    private static final PatchRaceFixture F = PatchRaceFixture.INSTANCE;

    @Actor
    public void relink() {
        try {
            long site = F.patcher.relink("g").patched();
            if (site == 0) {
                F.patcher.unlink("g");
            }
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Actor
    public void call(J_Result r) {
        try {
            r.r1 = (long) F.f2.invokeExact(5L);
        } catch (Throwable t) {
            r.r1 = -1;
        }
    }
}
