package dev.safepointkit.stackmap.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.stream.Stream;

/**
 * The committed stack map fixtures: objects compiled by scripts/regen-fixtures.sh from
 * fixtures/stackmaps/src, each with the llvm-readobj-19 listing recorded beside it.
 */
public final class Fixtures {
    private Fixtures() {
    }

    /** The checkout's root, passed by the build as {@code safepointkit.root}. */
    public static Path projectRoot() {
        String root = System.getProperty("safepointkit.root");
        if (root == null) {
            throw new IllegalStateException("system property safepointkit.root is not set; run the tests through ./mvnw");
        }
        return Path.of(root);
    }

    public static Path stackMapFixtures() {
        return projectRoot().resolve("fixtures/stackmaps");
    }

    public static Path sources() {
        return stackMapFixtures().resolve("src");
    }

    /** Every fixture object and shared object, relative to {@link #stackMapFixtures()}, sorted. */
    public static List<Path> objects() {
        Path root = stackMapFixtures();
        try (Stream<Path> files = Files.walk(root)) {
            List<Path> objects = files
                    .filter(p -> !p.startsWith(root.resolve("src")))
                    .filter(p -> p.toString().endsWith(".o") || p.toString().endsWith(".so"))
                    .map(root::relativize)
                    .sorted()
                    .toList();
            if (objects.isEmpty()) {
                throw new IllegalStateException("no fixture objects under " + root);
            }
            return objects;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The recorded {@code llvm-readobj-19 --stackmap} output for a fixture object. */
    public static String expectedListing(Path relativeObject) {
        Path listing = stackMapFixtures().resolve(relativeObject + ".readobj.txt");
        try {
            return Files.readString(listing);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Maps a file read-only into {@code arena}, which owns the mapping. */
    public static MemorySegment map(Path file, Arena arena) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            return channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The names of the functions an IR source defines, in order (the order LLVM emits them). */
    public static List<String> definedFunctions(String sourceName) {
        try {
            return Files.readAllLines(sources().resolve(sourceName)).stream()
                    .filter(line -> line.startsWith("define "))
                    .map(line -> line.substring(line.indexOf('@') + 1, line.indexOf('(', line.indexOf('@'))))
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
