package dev.safepointkit.stress.ttsp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.roots.StopTimeoutException;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The benchmark's harness measures real stops of the fixture's loops, and refuses what it cannot measure. */
@Timeout(120)
class TimeToSafepointTest {

    @Test
    void oneStopOfOneMutatorInTheJitLoopParksItAndReportsPositiveTimes() throws Throwable {
        try (SpinLoops loops = new SpinLoops()) {
            TimeToSafepoint.Result r = TimeToSafepoint.measure(loops, 1, 0, 1, 0, Duration.ofSeconds(30));
            assertEquals(1, r.toSafepoint().getTotalCount());
            assertEquals(1, r.roundTrip().getTotalCount());
            assertTrue(r.toSafepoint().getMinValue() > 0, "time to safepoint " + r.toSafepoint().getMinValue() + " ns");
            assertTrue(r.roundTrip().getMaxValue() >= r.toSafepoint().getMaxValue(),
                    "the round trip " + r.roundTrip().getMaxValue() + " ns holds the time to safepoint "
                            + r.toSafepoint().getMaxValue() + " ns");
            assertEquals(0, loops.coordinator().mutatorCount(), "every mutator left");
            assertEquals(2, loops.coordinator().stops(), "the measured stop and the one that lets the mutator quit");
        }
    }

    @Test
    void mutatorsInALoopWithoutPollsNeverParkAndTheStopFailsNamingThem() throws Throwable {
        try (SpinLoops loops = new SpinLoops()) {
            // About a second of iterations: longer than the timeout, and the run waits for them to end.
            StopTimeoutException e = assertThrows(StopTimeoutException.class, () -> TimeToSafepoint.measure(loops, 2, 0, 1, 0,
                    Duration.ofMillis(100), (l, context) -> l.spinPlain(context, 400_000_000L)));
            assertTrue(e.getMessage().contains("spin-0") && e.getMessage().contains("spin-1"), e.getMessage());
            assertEquals(0, loops.coordinator().mutatorCount(), "the run waited for the loops to return");
        }
    }

    @Test
    void thePolledAndThePlainLoopComputeTheSameRecurrence() throws Throwable {
        try (SpinLoops loops = new SpinLoops()) {
            PollCost.Result r = PollCost.measure(loops, 1_000_000, 0, 3);
            for (int i = 0; i < 3; i++) {
                assertTrue(r.plain()[i] > 0 && r.polled()[i] > 0, "round " + i);
            }
        }
    }

    private static final String LINE = "[2.733s][info][safepoint] Safepoint \"%s\", Time since last: 941578724 ns,"
            + " Reaching safepoint: %d ns, At safepoint: 104857 ns, Leaving safepoint: 3836 ns, Total: %d ns,"
            + " Threads: 1 runnable, 11 total";

    @Test
    void theSafepointLogGivesTheReachingAndTotalTimesOfItsOperationAfterTheWarmUp() {
        List<String> lines = List.of(
                String.format(LINE, "ThreadDump", 999_000, 999_999),
                String.format(LINE, "G1CollectForAllocation", 5_000_000, 9_000_000),
                String.format(LINE, "ThreadDump", 2_000, 110_000),
                "[2.8s][info][gc] an unrelated line",
                String.format(LINE, "ThreadDump", 4_000, 120_000));
        SafepointLog.Times t = SafepointLog.parse(lines, "ThreadDump", 1, 2);
        assertEquals(2, t.reaching().getTotalCount());
        assertEquals(2_000, t.reaching().getMinValue());
        assertTrue(t.reaching().valuesAreEquivalent(4_000, t.reaching().getMaxValue()));
        assertTrue(t.total().valuesAreEquivalent(120_000, t.total().getMaxValue()));

        IllegalArgumentException count = assertThrows(IllegalArgumentException.class,
                () -> SafepointLog.parse(lines, "ThreadDump", 1, 3));
        assertTrue(count.getMessage().contains("has 3 ThreadDump safepoints, not 4"), count.getMessage());
        IllegalArgumentException unreadable = assertThrows(IllegalArgumentException.class,
                () -> SafepointLog.parse(List.of("Safepoint \"ThreadDump\", Reaching safepoint: soon"), "ThreadDump", 0, 1));
        assertTrue(unreadable.getMessage().contains("without readable times"), unreadable.getMessage());
    }
}
