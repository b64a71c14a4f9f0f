package dev.safepointkit.stress.registry;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.SafepointRegistry;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.II_Result;

/**
 * Guarantee 1 under growth: while the index of objects is copied and grown by a registration and
 * a removal of other objects, a lookup of an object registered before never misses it.
 */
@JCStressTest
@Outcome(id = "1, [01]", expect = ACCEPTABLE, desc = "The old object is found; the new one maybe.")
@Outcome(id = "0, .*", expect = FORBIDDEN, desc = "An object registered earlier went missing during growth.")
@Outcome(id = ".*2.*", expect = FORBIDDEN, desc = "A wrong field during growth.")
@State
public class LookupDuringGrowthTest {
    private final SafepointRegistry registry = new SafepointRegistry();
    private final Frame frame = new Frame();

    public LookupDuringGrowthTest() {
        for (int i = 10; i < 17; i++) {
            RegistryFixture.register(registry, i);
        }
    }

    @Actor
    public void grower() {
        RegistryFixture.register(registry, 9);
        RegistryFixture.register(registry, 20);
        registry.unregister(10);
    }

    @Actor
    public void reader(II_Result r) {
        r.r1 = RegistryFixture.lookup(registry, frame, 13, 3);
        r.r2 = RegistryFixture.lookup(registry, frame, 20, 0);
    }
}
