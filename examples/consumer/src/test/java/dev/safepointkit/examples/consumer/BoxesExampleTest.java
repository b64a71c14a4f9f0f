package dev.safepointkit.examples.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class BoxesExampleTest {

    @Test
    void theCodeReadsItsBoxesBackThroughTheRootsTheCollectorMoved() throws Throwable {
        BoxesExample.Result r = BoxesExample.run(20, 2);

        assertEquals(List.of(), r.failures());
        // The space the boxes left is poison: a root the walk missed or did not fix reads it.
        assertEquals(2 * 20 + 2, r.value());
        assertEquals(1, r.collections(), "one poll, one collection");
        assertEquals(2, r.framesWalked(), "sum_after_poll and entry");
        assertEquals(2, r.boxesCopied(), "both boxes moved");
        assertTrue(r.slotsRelocated() >= 3, "at least a and b in sum_after_poll and a in entry: " + r.slotsRelocated());
    }
}
