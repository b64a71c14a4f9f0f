package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The spin budget learns from its spins: one that runs out ends them, probes bring them back. */
class SpinBudgetTest {

    @Test
    void startsAtItsMaximumAndStaysThereWhileSpinsSee() {
        SpinBudget b = new SpinBudget(16_000, 2_000, 4);
        for (int wait = 0; wait < 3; wait++) {
            assertEquals(16_000, b.next());
            b.spun(true);
        }
    }

    @Test
    void aSpinThatRunsOutEndsTheSpinningButForAProbeOfTheMinimumEveryFewWaits() {
        SpinBudget b = new SpinBudget(16_000, 2_000, 4);
        List<Long> budgets = new ArrayList<>();
        for (int wait = 0; wait < 10; wait++) {
            long n = b.next();
            budgets.add(n);
            if (n > 0) {
                b.spun(false);
            }
        }
        assertEquals(List.of(16_000L, 0L, 0L, 0L, 2_000L, 0L, 0L, 0L, 2_000L, 0L), budgets);
    }

    @Test
    void aProbeThatSawBringsTheSpinningBackDoublingFromTheMinimum() {
        SpinBudget b = new SpinBudget(16_000, 2_000, 2);
        b.next();
        b.spun(false);
        assertEquals(0, b.next());
        assertEquals(2_000, b.next(), "the probe");
        b.spun(true);
        List<Long> budgets = new ArrayList<>();
        for (int wait = 0; wait < 5; wait++) {
            budgets.add(b.next());
            b.spun(true);
        }
        assertEquals(List.of(2_000L, 4_000L, 8_000L, 16_000L, 16_000L), budgets, "never above the maximum");
    }

    @Test
    void refusesABudgetThatCouldNotSpin() {
        assertEquals("spin budget max 1000 ns, min 2000 ns, probe every 1",
                assertThrows(IllegalArgumentException.class, () -> new SpinBudget(1_000, 2_000, 1)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> new SpinBudget(1_000, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> new SpinBudget(1_000, 100, 0));
    }
}
