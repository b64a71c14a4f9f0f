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
 * Guarantees 2 and 3 when an object's slot is reused: object 5 is unregistered and object 7, at
 * other addresses, takes the slot it freed, while a reader looks up one safepoint of each. The
 * table's value for 5's address still names the slot until it is retired; a reader that read it
 * before and finds object 7 in the slot after must not answer 5's address with 7's fields (the
 * registry reads the value again around the slot's object).
 */
@JCStressTest
@Outcome(id = "[01], [01]", expect = ACCEPTABLE, desc = "Object 5 found or already gone; object 7 not yet or found, whole.")
@Outcome(id = "2, .*", expect = FORBIDDEN, desc = "Object 5's address answered with other fields: the reused slot's object.")
@Outcome(id = ".*, 2", expect = FORBIDDEN, desc = "Object 7 seen with wrong fields.")
@State
public class SlotReuseTest {
    private final SafepointRegistry registry = new SafepointRegistry();
    private final Frame frame = new Frame();

    public SlotReuseTest() {
        RegistryFixture.register(registry, 5);
        RegistryFixture.register(registry, 6);
    }

    @Actor
    public void writer() {
        registry.unregister(5);
        RegistryFixture.register(registry, 7);
    }

    @Actor
    public void reader(II_Result r) {
        r.r1 = RegistryFixture.lookup(registry, frame, 5, 2);
        r.r2 = RegistryFixture.lookup(registry, frame, 7, 2);
    }
}
