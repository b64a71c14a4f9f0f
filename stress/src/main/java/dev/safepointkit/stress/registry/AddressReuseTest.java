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
 * Guarantees 1 to 3 when code is reused: object 5 was registered and removed; new code is now
 * registered at the same return addresses. A racing reader sees nothing or the new code, whole;
 * never the removed object again, never a mix. (The registry reuses the removed entries in place.)
 */
@JCStressTest
@Outcome(id = "0, 0", expect = ACCEPTABLE, desc = "Both lookups before the new registration.")
@Outcome(id = "0, 3", expect = ACCEPTABLE, desc = "The new registration landed between the lookups.")
@Outcome(id = "3, 3", expect = ACCEPTABLE, desc = "Both lookups see the new code, whole.")
@Outcome(id = "3, 0", expect = FORBIDDEN, desc = "Half registered: the first-put safepoint visible, the last-put not.")
@Outcome(id = ".*1.*", expect = FORBIDDEN, desc = "The removed object came back.")
@Outcome(id = ".*2.*", expect = FORBIDDEN, desc = "A mix of old and new fields.")
@State
public class AddressReuseTest {
    private static final long NEW_KEY = 500;
    private final SafepointRegistry registry = new SafepointRegistry();
    private final Frame frame = new Frame();

    public AddressReuseTest() {
        RegistryFixture.register(registry, 5);
        RegistryFixture.register(registry, 6);
        registry.unregister(5);
    }

    @Actor
    public void writer() {
        RegistryFixture.registerVariant(registry, NEW_KEY, 5);
    }

    @Actor
    public void reader(II_Result r) {
        // The first-put safepoint, then the last-put one: a registration visible entry by entry, as
        // it is put, would show the first and not yet the last.
        r.r1 = RegistryFixture.lookupEither(registry, frame, 5, NEW_KEY, 0);
        r.r2 = RegistryFixture.lookupEither(registry, frame, 5, NEW_KEY, RegistryFixture.SAFEPOINTS - 1);
    }
}
