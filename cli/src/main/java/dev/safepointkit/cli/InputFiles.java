package dev.safepointkit.cli;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Opening the files a command is given, with a short reason for each one it cannot. Stateless. */
final class InputFiles {
    private InputFiles() {}

    /** Maps {@code file} read-only for the life of {@code arena}. */
    static MemorySegment map(Path file, Arena arena) throws IOException {
        checkIsFile(file);
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            return channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
        }
    }

    /** The bytes of {@code file}. */
    static byte[] read(Path file) throws IOException {
        checkIsFile(file);
        return Files.readAllBytes(file);
    }

    private static void checkIsFile(Path file) throws IOException {
        if (Files.isDirectory(file)) {
            throw new IOException("is a directory");
        }
    }

    /** The reason, without the file's name: "no such file", "permission denied", "is a directory", ... */
    static String describe(Exception e) {
        if (e instanceof NoSuchFileException) {
            return "no such file";
        }
        if (e instanceof AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof RuntimeException) {
            // A bug, not bad input: say so rather than pass it off as a format problem.
            return "internal error: " + e;
        }
        return e.getMessage();
    }
}
