package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The spin budget learns from its spins: it shrinks to none when they run out, and probes its way back. */
class SpinBudgetTest {

    @Test
    void startsAtItsMaximumAndDoublesBackToItAfterSpinsThatSaw() {
        SpinBudget b = new SpinBudget(16_000, 2_000, 4);
        assertEquals(16_000, b.next());
        b.spun(false);
        assertEquals(8_000, b.next());
        b.spun(true);
        assertEquals(16_000, b.next());
        b.spun(true);
        assertEquals(16_000, b.next(), "never above the maximum");
    }

    @Test
    void spinsThatRunOutEndTheSpinningButForAProbeOfTheMinimumEveryFewWaits() {
        SpinBudget b = new SpinBudget(16_000, 2_000, 4);
        List<Long> budgets = new ArrayList<>();
        for (int wait = 0; wait < 12; wait++) {
            long n = b.next();
            budgets.add(n);
            if (n > 0) {
                b.spun(false);
            }
        }
        assertEquals(List.of(16_000L, 8_000L, 4_000L, 2_000L, 0L, 0L, 0L, 2_000L, 0L, 0L, 0L, 2_000L), budgets);
    }

    @Test
    void aProbeThatSawBringsTheSpinningBack() {
        SpinBudget b = new SpinBudget(16_000, 2_000, 2);
        for (int i = 0; i < 4; i++) {
            b.next();
            b.spun(false);
        }
        assertEquals(0, b.next());
        assertEquals(2_000, b.next(), "the probe");
        b.spun(true);
        assertEquals(2_000, b.next(), "spinning again, from the minimum");
        b.spun(true);
        assertEquals(4_000, b.next());
    }

    @Test
    void refusesABudgetThatCouldNotSpin() {
        assertEquals("spin budget max 1000 ns, min 2000 ns, probe every 1",
                assertThrows(IllegalArgumentException.class, () -> new SpinBudget(1_000, 2_000, 1)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> new SpinBudget(1_000, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> new SpinBudget(1_000, 100, 0));
    }
}
