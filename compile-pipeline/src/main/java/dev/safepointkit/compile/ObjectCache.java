package dev.safepointkit.compile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.zip.CRC32;
import java.util.zip.CRC32C;

/**
 * A directory of compiled objects keyed by a SHA-256 of everything that decides their bytes
 * (the pipeline computes the key). Each entry is one file {@code KEY.spko}:
 * <pre>
 *   0  8  magic "SPKOBJ3\n"
 *   8  8  payload length, little endian
 *  16  4  CRC-32C of the payload, little endian
 *  20  4  CRC-32 of the payload, little endian
 *  24 32  the key, as its 32 raw bytes
 *  56  n  payload
 * </pre>
 * An entry names its own key, so a whole, undamaged entry found under another key's name (copied,
 * renamed or swapped by hand or by a tool) is refused like a damaged one instead of loaded as the
 * object of a different module.
 * The two checksums (64 bits of two different polynomials, both computed by the processor's
 * CRC instructions) catch a damaged or cut entry without costing a cryptographic hash per read:
 * the key already says which entry is wanted, so the checksum only has to say the file is whole,
 * and a manifest that carries a copy of its source (several hundred kilobytes) is checked in
 * microseconds. They are not a defence against someone who can write the directory: such a
 * writer could store any object under any key anyway.
 *
 * <p>An entry is written to a temporary file in the same directory and renamed over its name, so a
 * reader sees a whole entry or none; a reader checks the magic, the length and both checksums, and an
 * entry that fails any of them, or names another key than its file's, is deleted and reported as a miss ({@link Lookup#corrupt}), never
 * returned (a whole entry that another process renamed over it after the read is left in place). Several processes may share one directory: two writers of one key write the same bytes,
 * and whichever rename lands last wins. Reading an entry sets its modification time, so eviction
 * (oldest first, when the entries together pass the size limit after a store) is least recently
 * used across processes; an entry evicted under another process's reader is read whole by it (the
 * file stays open) or missed.
 *
 * <p>Thread safe: no state but the directory and whether a store has swept it (see {@link #put});
 * every method may run on any thread.
 */
public final class ObjectCache {
    private static final byte[] MAGIC = "SPKOBJ3\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    /** Bytes before the payload. */
    static final int HEADER = 56;
    /** Where the entry's own key lies, and its length. */
    private static final int KEY_AT = 24;
    private static final int KEY_BYTES = 32;
    private static final String SUFFIX = ".spko";
    /**
     * How a temporary file is named: this, the process id, a random part, the suffix. A store
     * writes its entry under such a name before the rename; a reader sets a damaged entry aside
     * under one.
     */
    private static final String TEMPORARY = ".tmp-";
    /** A temporary file older than this is taken for one a dead process left behind (see {@link #put}). */
    static final long ABANDONED_TEMPORARY_MILLIS = 60 * 60 * 1000;

    private final Path directory;
    private final long maxBytes;
    /**
     * Run by {@link #get} between finding an entry damaged and discarding it; for tests, which set
     * it before any other thread uses this cache and put a store of another process there.
     */
    Runnable beforeDiscarding = () -> { };
    /**
     * Run by {@link #get} between setting a whole entry aside and putting it back; for tests, as
     * {@link #beforeDiscarding}.
     */
    Runnable beforePuttingBack = () -> { };
    /** Without a limit, whether a store has deleted the temporary files dead stores left. */
    private final java.util.concurrent.atomic.AtomicBoolean swept = new java.util.concurrent.atomic.AtomicBoolean();
    /**
     * Run by {@link #put} between writing its temporary file and renaming it; for tests, which set
     * it before any other thread uses this cache and put another process's eviction pass there.
     */
    Runnable beforeRenaming = () -> { };

    /**
     * A cache in {@code directory}, created if missing.
     *
     * @param directory where entries live; shared with other processes as it is
     * @param maxBytes the size the entries may reach together before the least recently used are
     *     deleted; {@link Long#MAX_VALUE} for no limit
     * @throws IOException if the directory cannot be created
     * @throws IllegalArgumentException if {@code maxBytes} is not positive
     */
    public ObjectCache(Path directory, long maxBytes) throws IOException {
        if (maxBytes <= 0) {
            throw new IllegalArgumentException("cache size limit " + maxBytes + " is not positive");
        }
        this.directory = Files.createDirectories(directory);
        this.maxBytes = maxBytes;
    }

    /** {@return the cache's directory} */
    public Path directory() {
        return directory;
    }

    /**
     * What a lookup found.
     *
     * @param payload the entry's bytes; empty on a miss
     * @param corrupt whether an entry was there but failed its checks (it is deleted)
     * @param why for a corrupt entry, what was wrong; else empty
     */
    public record Lookup(Optional<byte[]> payload, boolean corrupt, String why) {}

    /**
     * Reads the entry of {@code key}.
     *
     * @param key a key, as {@link #key} makes them
     * @return the payload, or a miss saying whether a corrupt entry was found and deleted
     * @throws IOException if the directory cannot be read for another reason than a missing entry
     */
    public Lookup get(String key) throws IOException {
        Path file = entry(key);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            return new Lookup(Optional.empty(), false, "");
        }
        String why = check(bytes, key);
        if (why != null) {
            beforeDiscarding.run();
            discard(file, key);
            return new Lookup(Optional.empty(), true, file.getFileName() + ": " + why);
        }
        try {
            Files.setLastModifiedTime(file, FileTime.fromMillis(System.currentTimeMillis()));
        } catch (NoSuchFileException e) {
            // Evicted by another process after the read: the bytes read are whole and checked.
        }
        return new Lookup(Optional.of(Arrays.copyOfRange(bytes, HEADER, bytes.length)), false, "");
    }

    /**
     * Deletes the damaged entry a reader found at {@code file}, but not a whole one that a store
     * renamed over it after the read: the file is first renamed aside (atomically, so what is set
     * aside is whichever entry was there at that instant), checked again, and put back if whole.
     * Any failure leaves a miss, which a store repairs.
     */
    private void discard(Path file, String key) {
        Path aside = temporaryName();
        try {
            Files.move(file, aside, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            return;  // already replaced by a rename of its own, evicted or deleted by another process
        }
        try {
            if (check(Files.readAllBytes(aside), key) == null) {
                beforePuttingBack.run();
                putBack(aside, file);
            }
        } catch (IOException e) {
            // The entry is missed; the next store of its key writes it.
        } finally {
            try {
                Files.deleteIfExists(aside);
            } catch (IOException e) {
                // Left as a temporary file, which a later store deletes once it is old.
            }
        }
    }

    /**
     * Puts the whole entry set aside at {@code aside} back at {@code file}, unless a store has put
     * an entry there since: that one is as new or newer (a manifest's key keeps its name while its
     * entry grows), and a rename would replace it. A hard link is made only where none is; where
     * the file system has none, the rename it is.
     */
    private static void putBack(Path aside, Path file) throws IOException {
        try {
            Files.createLink(file, aside);
        } catch (java.nio.file.FileAlreadyExistsException newer) {
            // Stored meanwhile: it stays, and the aside is deleted.
        } catch (UnsupportedOperationException | java.nio.file.FileSystemException noLinks) {
            Files.move(aside, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** A new name for a temporary file in the directory ({@link #TEMPORARY}, this process, a random part). */
    private Path temporaryName() {
        return directory.resolve(TEMPORARY + ProcessHandle.current().pid() + "-"
                + Long.toHexString(ThreadLocalRandom.current().nextLong()) + SUFFIX);
    }

    /** Why {@code bytes} is not the whole entry of {@code key}, or null. */
    private static String check(byte[] bytes, String key) {
        if (bytes.length < HEADER) {
            return "truncated: " + bytes.length + " bytes, shorter than the " + HEADER + "-byte header";
        }
        if (!Arrays.equals(bytes, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
            return "bad magic at offset 0";
        }
        ByteBuffer header = ByteBuffer.wrap(bytes, 0, HEADER).order(ByteOrder.LITTLE_ENDIAN);
        long length = header.getLong(8);
        if (length != bytes.length - HEADER) {
            return (length > bytes.length - HEADER ? "truncated: " : "") + "length field at offset 8 says " + length
                    + " payload bytes, the file holds " + (bytes.length - HEADER);
        }
        if (header.getInt(16) != crc32c(bytes, HEADER, bytes.length - HEADER)) {
            return "CRC-32C checksum at offset 16 does not match the payload";
        }
        if (header.getInt(20) != crc32(bytes, HEADER, bytes.length - HEADER)) {
            return "CRC-32 checksum at offset 20 does not match the payload";
        }
        byte[] want = HexFormat.of().parseHex(key);
        if (!Arrays.equals(bytes, KEY_AT, KEY_AT + KEY_BYTES, want, 0, KEY_BYTES)) {
            return "the header at offset " + KEY_AT + " holds the entry of key "
                    + HexFormat.of().formatHex(bytes, KEY_AT, KEY_AT + KEY_BYTES) + ", not of " + key;
        }
        return null;
    }

    private static int crc32c(byte[] bytes, int offset, int length) {
        CRC32C crc = new CRC32C();
        crc.update(bytes, offset, length);
        return (int) crc.getValue();
    }

    private static int crc32(byte[] bytes, int offset, int length) {
        CRC32 crc = new CRC32();
        crc.update(bytes, offset, length);
        return (int) crc.getValue();
    }

    /**
     * Stores {@code payload} under {@code key}, atomically, then evicts the least recently used
     * entries while the cache is over its limit (never the one just stored). With a limit, the
     * temporary files of stores in progress count against it, and one older than an hour, which
     * a process that died between writing and renaming it left behind, is deleted (without a
     * limit, by the cache's first store only). A store whose temporary another process took for
     * such a one and deleted before the rename writes it again, once.
     *
     * @param key a key, as {@link #key} makes them
     * @param payload the bytes to keep
     * @throws IOException if the entry cannot be written or renamed into place
     */
    public void put(String key, byte[] payload) throws IOException {
        byte[] bytes = new byte[HEADER + payload.length];
        System.arraycopy(MAGIC, 0, bytes, 0, MAGIC.length);
        System.arraycopy(payload, 0, bytes, HEADER, payload.length);
        Path target = entry(key);
        System.arraycopy(HexFormat.of().parseHex(key), 0, bytes, KEY_AT, KEY_BYTES);
        ByteBuffer.wrap(bytes, 0, HEADER).order(ByteOrder.LITTLE_ENDIAN).putLong(8, payload.length)
                .putInt(16, crc32c(payload, 0, payload.length)).putInt(20, crc32(payload, 0, payload.length));
        Path temporary = temporaryName();
        try {
            for (int attempt = 1; ; attempt++) {
                Files.write(temporary, bytes);
                beforeRenaming.run();
                try {
                    Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                    break;
                } catch (AtomicMoveNotSupportedException e) {
                    throw new IOException(directory + " cannot rename atomically, so it cannot hold a shared cache", e);
                } catch (NoSuchFileException gone) {
                    // Another process's eviction pass took the temporary for a dead store's (its
                    // clock is ahead of the file system's, or this thread stood still between the
                    // write and the rename): written again, once, instead of failing the compile.
                    if (attempt == 2) {
                        throw gone;
                    }
                }
            }
        } finally {
            Files.deleteIfExists(temporary);
        }
        evict(target);
    }

    private void evict(Path keep) throws IOException {
        if (maxBytes == Long.MAX_VALUE) {
            // No limit: nothing to count, and a directory scan per store saved; but what dead
            // stores left is deleted once per cache, on its first store (a warm start stores nothing).
            if (!swept.getAndSet(true)) {
                try (DirectoryStream<Path> files = Files.newDirectoryStream(directory, TEMPORARY + "*" + SUFFIX)) {
                    for (Path file : files) {
                        try {
                            if (abandoned(Files.getLastModifiedTime(file).toMillis())) {
                                Files.deleteIfExists(file);
                            }
                        } catch (NoSuchFileException e) {
                            // Renamed or cleaned up by another process meanwhile.
                        }
                    }
                }
            }
            return;
        }
        record Entry(Path file, long size, long used) {}
        List<Entry> entries = new ArrayList<>();
        long total = 0;
        try (DirectoryStream<Path> files = Files.newDirectoryStream(directory, "*" + SUFFIX)) {
            for (Path file : files) {
                try {
                    long size = Files.size(file);
                    long modified = Files.getLastModifiedTime(file).toMillis();
                    if (file.getFileName().toString().startsWith(TEMPORARY)) {
                        // A store writes its temporary and renames it at once: one this old was
                        // left by a process that died in between, and nothing will rename it. A
                        // reader's aside keeps the entry's time, so an old one may be in use, but
                        // it is then the damaged entry (a whole one set aside was just stored),
                        // which its reader deletes anyway.
                        if (abandoned(modified)) {
                            Files.deleteIfExists(file);
                        } else {
                            total += size;   // a store in progress takes its room too
                        }
                        continue;
                    }
                    Entry e = new Entry(file, size, modified);
                    entries.add(e);
                    total += e.size();
                } catch (NoSuchFileException e) {
                    // Evicted, renamed or cleaned up by another process meanwhile.
                }
            }
        }
        if (total <= maxBytes) {
            return;
        }
        entries.sort(Comparator.comparingLong(Entry::used));
        for (Entry e : entries) {
            if (total <= maxBytes) {
                return;
            }
            if (!e.file().equals(keep)) {
                Files.deleteIfExists(e.file());
                total -= e.size();
            }
        }
    }

    /** Whether a temporary file last written at {@code modified} (ms since the epoch) is older than {@link #ABANDONED_TEMPORARY_MILLIS}. */
    private static boolean abandoned(long modified) {
        return System.currentTimeMillis() - modified > ABANDONED_TEMPORARY_MILLIS;
    }

    private Path entry(String key) {
        if (!key.matches("[0-9a-f]{64}")) {
            throw new IllegalArgumentException("cache key '" + key + "' is not 64 lower-case hex digits");
        }
        return directory.resolve(key + SUFFIX);
    }

    /**
     * The key of a list of parts: a SHA-256 over each part's length and bytes, so that no two
     * different lists give the same stream. Stateless.
     *
     * @param parts what decides the entry's bytes
     * @return 64 lower-case hex digits
     */
    public static String key(List<byte[]> parts) {
        MessageDigest digest = sha256();
        ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        for (byte[] part : parts) {
            digest.update(length.clear().putLong(part.length).array());
            digest.update(part);
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
