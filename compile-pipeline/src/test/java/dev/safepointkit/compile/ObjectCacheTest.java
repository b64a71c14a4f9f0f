package dev.safepointkit.compile;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The cache's entry format, its checks and its eviction, without LLVM. */
class ObjectCacheTest {
    @TempDir
    Path dir;

    private static String key(String s) {
        return ObjectCache.key(List.of(s.getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void storesAndReadsBackAnEntry() throws Exception {
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        cache.put(key("a"), new byte[] {1, 2, 3});
        assertArrayEquals(new byte[] {1, 2, 3}, cache.get(key("a")).payload().orElseThrow());
        assertTrue(cache.get(key("b")).payload().isEmpty());
        assertFalse(cache.get(key("b")).corrupt(), "absent is not corrupt");
    }

    @Test
    void keysSeparateTheirParts() {
        assertNotEquals(ObjectCache.key(List.of("ab".getBytes(), "c".getBytes())), ObjectCache.key(List.of("a".getBytes(), "bc".getBytes())));
        assertThrows(IllegalArgumentException.class, () -> new ObjectCache(dir, 1).get("../escape"));
    }

    @Test
    void aDamagedEntryIsReportedAndDeleted() throws Exception {
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        byte[] payload = new byte[100];
        cache.put(key("a"), payload);
        Path file = dir.resolve(key("a") + ".spko");
        byte[] bytes = Files.readAllBytes(file);
        bytes[60] = 9;
        Files.write(file, bytes);
        ObjectCache.Lookup damaged = cache.get(key("a"));
        assertTrue(damaged.corrupt());
        assertTrue(damaged.why().contains("checksum"), damaged.why());
        assertFalse(Files.exists(file), "deleted, so the next store writes it whole");
        Files.write(file, java.util.Arrays.copyOf(bytes, 30));
        assertTrue(cache.get(key("a")).why().contains("truncated"));
    }

    @Test
    void aReaderThatFoundADamagedEntryLeavesAWholeOneAnotherProcessRenamedOverItMeanwhile() throws Exception {
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        ObjectCache otherProcess = new ObjectCache(dir, Long.MAX_VALUE);
        byte[] payload = "the object".getBytes(StandardCharsets.US_ASCII);
        Path file = storeDamaged(cache, key("a"), payload);
        // Between this reader's check and its discarding, a store elsewhere renames a whole entry in.
        cache.beforeDiscarding = () -> store(otherProcess, key("a"), payload);
        assertTrue(cache.get(key("a")).corrupt(), "what this reader read was damaged");
        cache.beforeDiscarding = () -> { };
        java.util.Optional<byte[]> now = cache.get(key("a")).payload();
        assertTrue(now.isPresent(), "the whole entry stored meanwhile is still there");
        assertArrayEquals(payload, now.get());
        try (var files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList(), "and nothing was left aside");
        }
    }

    @Test
    void eachChecksumCatchesADamagedEntryAndACutPayloadIsTruncated() throws Exception {
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        Path file = dir.resolve(key("a") + ".spko");
        for (int at : new int[] {16, 20}) {
            cache.put(key("a"), new byte[] {1, 2, 3, 4});
            byte[] bytes = Files.readAllBytes(file);
            bytes[at] ^= 1;
            Files.write(file, bytes);
            ObjectCache.Lookup damaged = cache.get(key("a"));
            assertTrue(damaged.corrupt() && damaged.payload().isEmpty(), "offset " + at);
            assertTrue(damaged.why().contains(at == 16 ? "CRC-32C checksum" : "CRC-32 checksum"), damaged.why());
        }
        cache.put(key("a"), new byte[100]);
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(bytes, bytes.length - 1));
        ObjectCache.Lookup cut = cache.get(key("a"));
        assertTrue(cut.corrupt() && cut.why().startsWith(key("a") + ".spko: truncated"), cut.why());
    }

    @Test
    void aWholeEntryUnderAnotherKeysNameIsNeverReturned() throws Exception {
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        cache.put(key("a"), new byte[] {1, 2, 3});
        cache.put(key("b"), new byte[] {4, 5, 6});
        Path a = dir.resolve(key("a") + ".spko");
        Path b = dir.resolve(key("b") + ".spko");
        byte[] entryOfA = Files.readAllBytes(a);
        Files.write(a, Files.readAllBytes(b));
        Files.write(b, entryOfA);
        for (String k : List.of(key("a"), key("b"))) {
            ObjectCache.Lookup swapped = cache.get(k);
            assertTrue(swapped.corrupt() && swapped.payload().isEmpty(), k);
            assertTrue(swapped.why().contains("holds the entry of key " + (k.equals(key("a")) ? key("b") : key("a")) + ", not of " + k),
                    swapped.why());
        }
        assertFalse(Files.exists(a) || Files.exists(b), "both deleted, so the next stores write them whole");
        cache.put(key("a"), new byte[] {1, 2, 3});
        assertArrayEquals(new byte[] {1, 2, 3}, cache.get(key("a")).payload().orElseThrow());
    }

    /**
     * A reader racing a writer that stores the entry again and again sees the whole entry every
     * time, never a part of one (which it would report as corrupt and delete).
     */
    @Test
    void aReaderNeverSeesAnEntryBeingWritten() throws Exception {
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        byte[] payload = new byte[1 << 20];
        new java.util.Random(1).nextBytes(payload);
        cache.put(key("a"), payload);
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.FutureTask<Integer> writer = new java.util.concurrent.FutureTask<>(() -> {
            int n = 0;
            while (!done.get()) {
                cache.put(key("a"), payload);
                n++;
            }
            return n;
        });
        Thread.ofPlatform().start(writer);
        int whole = 0;
        try {
            for (int i = 0; i < 200; i++) {
                ObjectCache.Lookup read = cache.get(key("a"));
                assertFalse(read.corrupt(), "read " + i + ": " + read.why());
                if (read.payload().isPresent()) {
                    assertArrayEquals(payload, read.payload().get());
                    whole++;
                }
            }
        } finally {
            done.set(true);
        }
        assertTrue(writer.get() > 0, "the writer stored the entry again meanwhile");
        assertEquals(200, whole, "the entry is there at every read");
    }

    @Test
    void evictsTheLeastRecentlyUsedEntriesPastTheLimit() throws Exception {
        ObjectCache cache = new ObjectCache(dir, 3 * (ObjectCache.HEADER + 100));
        for (String k : List.of("a", "b", "c")) {
            cache.put(key(k), new byte[100]);
            Files.setLastModifiedTime(dir.resolve(key(k) + ".spko"), FileTime.fromMillis(1_000_000 + k.charAt(0)));
        }
        assertTrue(cache.get(key("a")).payload().isPresent(), "reading a makes it the most recently used");
        cache.put(key("d"), new byte[100]);
        assertTrue(cache.get(key("b")).payload().isEmpty(), "b, the least recently used, is evicted");
        for (String k : List.of("a", "c", "d")) {
            assertTrue(cache.get(key(k)).payload().isPresent(), k);
        }
        assertEquals(3, Files.list(dir).count());
    }

    @Test
    void evictionNeverDeletesTheEntryJustStoredEvenWhenItIsTheOldestOrAloneTooLarge() throws Exception {
        ObjectCache cache = new ObjectCache(dir, 2 * (ObjectCache.HEADER + 100));
        // Entries another process stored with a clock ahead of this file system's: newer than any store here.
        for (String k : List.of("a", "b")) {
            cache.put(key(k), new byte[100]);
            Files.setLastModifiedTime(dir.resolve(key(k) + ".spko"), FileTime.fromMillis(System.currentTimeMillis() + 3_600_000));
        }
        cache.put(key("c"), new byte[100]);
        assertTrue(cache.get(key("c")).payload().isPresent(), "c, the oldest by time, was just stored and stays");
        assertEquals(2, Files.list(dir).count(), "one of the others made room");

        cache.put(key("big"), new byte[3 * 100]);
        assertEquals(300, cache.get(key("big")).payload().orElseThrow().length, "an entry larger than the limit stays once stored");
        assertEquals(List.of(dir.resolve(key("big") + ".spko")), Files.list(dir).toList(), "every other entry was evicted");
    }

    @Test
    void aLimitThatIsNotPositiveIsRefused() {
        for (long limit : new long[] {0, -1, Long.MIN_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ObjectCache(dir, limit),
                    "limit " + limit);
            assertTrue(e.getMessage().contains(Long.toString(limit)), e.getMessage());
        }
    }

    @Test
    void aTemporaryFileADeadStoreLeftIsDeletedAndOneInProgressCountsAgainstTheLimit() throws Exception {
        ObjectCache cache = new ObjectCache(dir, 3 * (ObjectCache.HEADER + 100));
        // What a process that died between writing and renaming leaves: a temporary an hour old.
        Path abandoned = dir.resolve(".tmp-4242-0123456789abcdef.spko");
        Files.write(abandoned, new byte[ObjectCache.HEADER + 100]);
        long old = System.currentTimeMillis() - ObjectCache.ABANDONED_TEMPORARY_MILLIS - 60_000;
        Files.setLastModifiedTime(abandoned, FileTime.fromMillis(old));
        // And one a store in another process is writing right now.
        Path inProgress = dir.resolve(".tmp-4343-fedcba9876543210.spko");
        Files.write(inProgress, new byte[ObjectCache.HEADER + 100]);

        cache.put(key("a"), new byte[100]);
        assertFalse(Files.exists(abandoned), "the abandoned temporary is deleted by the store's eviction pass");
        assertTrue(Files.exists(inProgress), "a young temporary is another store's, left alone");
        Files.setLastModifiedTime(dir.resolve(key("a") + ".spko"), FileTime.fromMillis(1_000_000));
        cache.put(key("b"), new byte[100]);
        assertTrue(cache.get(key("a")).payload().isPresent(), "a, b and the store in progress fill the limit exactly");
        Files.setLastModifiedTime(dir.resolve(key("a") + ".spko"), FileTime.fromMillis(1_000_000));
        cache.put(key("c"), new byte[100]);
        assertTrue(cache.get(key("a")).payload().isEmpty(),
                "with the store in progress counted, a third entry is one too many: a, the least recently used, goes");
        assertTrue(cache.get(key("b")).payload().isPresent());
        assertTrue(cache.get(key("c")).payload().isPresent());
        assertTrue(Files.exists(inProgress));
    }

    @Test
    void aStoreWhoseTemporaryAnotherProcessTookForAbandonedWritesItAgain() throws Exception {
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        byte[] payload = "the object".getBytes(StandardCharsets.US_ASCII);
        // Between this store's write and its rename, another process's eviction pass deletes the
        // temporary: its clock is an hour ahead, or this process stood still for an hour there.
        int[] passes = {0};
        cache.beforeRenaming = () -> {
            if (passes[0]++ == 0) {
                deleteTemporaries();
            }
        };
        cache.put(key("a"), payload);
        assertEquals(2, passes[0], "written again after the first was taken");
        cache.beforeRenaming = () -> { };
        assertArrayEquals(payload, cache.get(key("a")).payload().orElseThrow());
        try (var files = Files.list(dir)) {
            assertEquals(List.of(dir.resolve(key("a") + ".spko")), files.toList(), "and nothing was left behind");
        }
        // Taken every time, the store gives up and says so instead of writing for ever.
        cache.beforeRenaming = this::deleteTemporaries;
        assertThrows(java.nio.file.NoSuchFileException.class, () -> cache.put(key("b"), payload));
    }

    private void deleteTemporaries() {
        try (var files = Files.newDirectoryStream(dir, ".tmp-*")) {
            for (Path f : files) {
                Files.delete(f);
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void withoutALimitTheFirstStoreStillDeletesATemporaryADeadStoreLeft() throws Exception {
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        Path abandoned = dir.resolve(".tmp-4242-0123456789abcdef.spko");
        Files.write(abandoned, new byte[ObjectCache.HEADER + 100]);
        Files.setLastModifiedTime(abandoned,
                FileTime.fromMillis(System.currentTimeMillis() - ObjectCache.ABANDONED_TEMPORARY_MILLIS - 60_000));
        Path inProgress = dir.resolve(".tmp-4343-fedcba9876543210.spko");
        Files.write(inProgress, new byte[ObjectCache.HEADER + 100]);
        cache.put(key("a"), new byte[100]);
        assertFalse(Files.exists(abandoned), "no limit means no eviction, not a leak of every crashed store's bytes");
        assertTrue(Files.exists(inProgress));
        assertTrue(cache.get(key("a")).payload().isPresent());
    }

    @Test
    void aReaderPuttingBackAWholeEntryLeavesANewerOneStoredMeanwhile() throws Exception {
        // A manifest's key keeps its name while its entry grows: the newer of two whole entries stays.
        ObjectCache cache = new ObjectCache(dir, Long.MAX_VALUE);
        ObjectCache otherProcess = new ObjectCache(dir, Long.MAX_VALUE);
        byte[] older = "manifest, one function".getBytes(StandardCharsets.US_ASCII);
        byte[] newer = "manifest, two functions".getBytes(StandardCharsets.US_ASCII);
        Path file = storeDamaged(cache, key("m"), older);
        cache.beforeDiscarding = () -> store(otherProcess, key("m"), older);
        cache.beforePuttingBack = () -> store(otherProcess, key("m"), newer);
        assertTrue(cache.get(key("m")).corrupt());
        cache.beforeDiscarding = () -> { };
        cache.beforePuttingBack = () -> { };
        assertArrayEquals(newer, cache.get(key("m")).payload().orElseThrow(), "the reader did not put the older back over it");
        try (var files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList(), "and nothing was left aside");
        }
    }

    /** Stores {@code payload} under {@code key}, then flips a bit of its payload in the file, which it returns. */
    private Path storeDamaged(ObjectCache cache, String key, byte[] payload) throws java.io.IOException {
        cache.put(key, payload);
        Path file = dir.resolve(key + ".spko");
        byte[] bytes = Files.readAllBytes(file);
        bytes[ObjectCache.HEADER] ^= 1;
        Files.write(file, bytes);
        return file;
    }

    private static void store(ObjectCache cache, String key, byte[] payload) {
        try {
            cache.put(key, payload);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
