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
 * Guarantee 3 in the order the writer puts the entries: the reader looks up the first safepoint
 * (put first), then the last (put last). Seeing the first and then missing the last is an object
 * published before all its entries were in; {@link PublicationTest}'s reverse order cannot show
 * that, since the first entry is in before the last.
 */
@JCStressTest
@Outcome(id = "0, 0", expect = ACCEPTABLE, desc = "Both lookups before the registration.")
@Outcome(id = "0, 1", expect = ACCEPTABLE, desc = "Registration landed between the two lookups.")
@Outcome(id = "1, 1", expect = ACCEPTABLE, desc = "Both lookups after the registration, every field right.")
@Outcome(id = "1, 0", expect = FORBIDDEN, desc = "Half-registered: the first safepoint visible, the last not.")
@Outcome(id = ".*2.*", expect = FORBIDDEN, desc = "A safepoint visible with a wrong field: torn publication.")
@State
public class PublicationInPutOrderTest {
    private final SafepointRegistry registry = new SafepointRegistry();
    private final Frame frame = new Frame();

    @Actor
    public void writer() {
        RegistryFixture.register(registry, 1);
    }

    @Actor
    public void reader(II_Result r) {
        r.r1 = RegistryFixture.lookup(registry, frame, 1, 0);
        r.r2 = RegistryFixture.lookup(registry, frame, 1, RegistryFixture.SAFEPOINTS - 1);
    }
}
