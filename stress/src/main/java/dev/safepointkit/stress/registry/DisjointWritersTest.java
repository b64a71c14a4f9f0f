package dev.safepointkit.stress.registry;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.SafepointRegistry;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.II_Result;

/** Guarantee 4: two threads registering disjoint objects both take effect. */
@JCStressTest
@Outcome(id = "1, 1", expect = ACCEPTABLE, desc = "Both objects registered and whole.")
@Outcome(id = ".*", expect = FORBIDDEN, desc = "A registration was lost or torn.")
@State
public class DisjointWritersTest {
    private final SafepointRegistry registry = new SafepointRegistry();

    @Actor
    public void writerA() {
        RegistryFixture.register(registry, 3);
    }

    @Actor
    public void writerB() {
        RegistryFixture.register(registry, 4);
    }

    @Arbiter
    public void arbiter(II_Result r) {
        Frame frame = new Frame();
        r.r1 = RegistryFixture.lookup(registry, frame, 3, 1);
        r.r2 = RegistryFixture.lookup(registry, frame, 4, 2);
    }
}
