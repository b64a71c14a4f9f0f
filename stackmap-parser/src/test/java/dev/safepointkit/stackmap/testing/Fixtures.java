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

    /** Every ELF fixture object and shared object, relative to {@link #stackMapFixtures()}, sorted. */
    public static List<Path> objects() {
        Path root = stackMapFixtures();
        return find(p -> !p.startsWith(root.resolve("src")) && !p.startsWith(root.resolve("macho"))
                && !p.startsWith(root.resolve("coff")) && (p.toString().endsWith(".o") || p.toString().endsWith(".so")));
    }

    /** Every Mach-O ({@code macho/}) and COFF ({@code coff/}) fixture object, relative to {@link #stackMapFixtures()}, sorted. */
    public static List<Path> machOAndCoffObjects() {
        Path root = stackMapFixtures();
        return find(p -> (p.startsWith(root.resolve("macho")) || p.startsWith(root.resolve("coff")))
                && (p.toString().endsWith(".o") || p.toString().endsWith(".obj")));
    }

    private static List<Path> find(java.util.function.Predicate<Path> which) {
        Path root = stackMapFixtures();
        try (Stream<Path> files = Files.walk(root)) {
            List<Path> objects = files
                    .filter(which)
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

    /** The IR source a fixture object was compiled from: {@code x86_64/O2/statepoints-gcregs.o} to {@code statepoints.ll}. */
    public static String sourceOf(Path object) {
        return object.getFileName().toString().replaceFirst("(-gcregs)?\\.(o|obj)$", ".ll");
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

    /**
     * A copy of the ELF object {@code elf} whose first stack map record has InstructionOffset
     * {@code offset}: a record a registry must refuse when the offset lies outside its function.
     */
    public static byte[] withFirstInstructionOffset(byte[] elf, int offset) {
        try {
            dev.safepointkit.stackmap.elf.ElfSection section = dev.safepointkit.stackmap.elf.ElfFile.parse(MemorySegment.ofArray(elf))
                    .findSection(dev.safepointkit.stackmap.ObjectStackMaps.SECTION_NAME)
                    .orElseThrow(() -> new IllegalArgumentException("no stack maps in the object"));
            java.nio.ByteBuffer bytes = java.nio.ByteBuffer.wrap(elf.clone()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            int start = Math.toIntExact(section.offset());
            // Header (16 bytes), then 24 bytes per function and 8 per constant; the record's offset field is at +8.
            int record = start + 16 + 24 * bytes.getInt(start + 4) + 8 * bytes.getInt(start + 8);
            bytes.putInt(record + 8, offset);
            return bytes.array();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
