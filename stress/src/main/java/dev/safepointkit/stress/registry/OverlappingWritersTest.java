package dev.safepointkit.stress.registry;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.safepointkit.registry.SafepointRegistry;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;

/** Guarantee 6: of two racing registrations of overlapping code, exactly one takes effect. */
@JCStressTest
@Outcome(id = "1, 0, 1", expect = ACCEPTABLE, desc = "The first won; the second was refused.")
@Outcome(id = "0, 1, 1", expect = ACCEPTABLE, desc = "The second won; the first was refused.")
@Outcome(id = ".*", expect = FORBIDDEN, desc = "Both or neither registered: overlap let through, or a refusal changed state.")
@State
public class OverlappingWritersTest {
    private final SafepointRegistry registry = new SafepointRegistry();
    private int first;
    private int second;

    @Actor
    public void writerA() {
        first = RegistryFixture.tryRegister(registry, 30, RegistryFixture.codeStart(30), 0x100) ? 1 : 0;
    }

    @Actor
    public void writerB() {
        second = RegistryFixture.tryRegister(registry, 31, RegistryFixture.codeStart(30) + 0x80, 0x100) ? 1 : 0;
    }

    @Arbiter
    public void arbiter(III_Result r) {
        r.r1 = first;
        r.r2 = second;
        r.r3 = registry.objectCount();
    }
}
