package dev.safepointkit.stress.registry;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.SafepointRegistry;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;

/**
 * Guarantees 2, 3 and 5: a lookup racing unregister never sees the object come back, never sees
 * it half removed, and a frame found before the removal still reads right after it. The reader
 * looks up the first safepoint, then the last, then re-reads the first frame's fields.
 */
@JCStressTest
@Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "Both lookups before the removal.")
@Outcome(id = "1, 0, 1", expect = ACCEPTABLE, desc = "Removal landed between the lookups; the first frame still reads right.")
@Outcome(id = "0, 0, 0", expect = ACCEPTABLE, desc = "Both lookups after the removal.")
@Outcome(id = "0, 1, .*", expect = FORBIDDEN, desc = "The object came back after it was seen removed.")
@Outcome(id = ".*2.*", expect = FORBIDDEN, desc = "A wrong field: half removed, or a frame changed under its reader.")
@State
public class LookupRacingUnregisterTest {
    private final SafepointRegistry registry = new SafepointRegistry();
    private final Frame first = new Frame();
    private final Frame second = new Frame();

    public LookupRacingUnregisterTest() {
        RegistryFixture.register(registry, 2);
    }

    @Actor
    public void writer() {
        registry.unregister(2);
    }

    @Actor
    public void reader(III_Result r) {
        r.r1 = RegistryFixture.lookup(registry, first, 2, 0);
        r.r2 = RegistryFixture.lookup(registry, second, 2, RegistryFixture.SAFEPOINTS - 1);
        r.r3 = r.r1 == 1 ? (RegistryFixture.check(first, 2, 0) ? 1 : 2) : 0;
    }
}
