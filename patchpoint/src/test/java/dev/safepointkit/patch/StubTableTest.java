package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Entries by id across the growth of the table, snapshots, and an entry taken back. */
class StubTableTest {
    @Test
    void everyEntryIsFoundByIdAcrossGrowthAndSnapshotsStayAsTaken() {
        StubTable table = new StubTable(0x1000);
        try {
            List<StubEntry> added = new ArrayList<>();
            for (int i = 0; i < 300; i++) {
                StubEntry e = table.add("f" + i, f -> null, 0);
                table.publish(e);
                added.add(e);
                assertEquals(i, e.id);
            }
            for (StubEntry e : added) {
                assertSame(e, table.byId(e.id));
                assertTrue(table.isPublished(e));
            }
            List<StubEntry> snapshot = table.all();
            assertEquals(added, snapshot);
            StubEntry refused = table.add("refused", f -> null, 0);
            assertSame(refused, table.byId(300));
            table.removeLast(refused);
            assertThrows(IllegalStateException.class, () -> table.byId(300), "taken back");
            StubEntry again = table.add("again", f -> null, 0);
            assertEquals(300, again.id, "the slot is used again");
            assertSame(again, table.byId(300));
            assertEquals(300, snapshot.size(), "a snapshot does not follow later adds");
            assertEquals(301, table.all().size());
            assertThrows(IllegalStateException.class, () -> table.removeLast(added.get(5)), "only the newest");
        } finally {
            table.free();
        }
    }
}
