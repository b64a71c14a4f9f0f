package dev.safepointkit.cli;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
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

    /**
     * The bytes of an input of {@code run} or {@code compile}; a {@code .bc} file must start as
     * bitcode does, since LLVM takes anything else for IR text and would report a text parse error.
     */
    static byte[] readInput(Path file) throws IOException {
        byte[] bytes = read(file);
        if (file.getFileName() != null && file.getFileName().toString().endsWith(".bc") && !isBitcode(bytes)) {
            throw new IOException("not LLVM bitcode: it does not start with the magic 'BC' 0xC0DE (or the wrapper's 0x0B17C0DE)");
        }
        return bytes;
    }

    /** Whether {@code bytes} start with bitcode's magic, 'B' 'C' 0xC0DE, or the bitcode wrapper's 0x0B17C0DE (little-endian). */
    static boolean isBitcode(byte[] bytes) {
        return bytes.length >= 4 && ((bytes[0] == 'B' && bytes[1] == 'C' && bytes[2] == (byte) 0xC0 && bytes[3] == (byte) 0xDE)
                || (bytes[0] == (byte) 0xDE && bytes[1] == (byte) 0xC0 && bytes[2] == 0x17 && bytes[3] == 0x0B));
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
        if (e instanceof FileAlreadyExistsException) {
            return "exists and is not a directory";
        }
        if (e instanceof NotDirectoryException) {
            return "not a directory";
        }
        if (e instanceof FileSystemException f && f.getReason() != null) {
            // The message repeats the file's name; the reason is what the system said.
            return f.getReason().toLowerCase(java.util.Locale.ROOT);
        }
        if (e instanceof RuntimeException) {
            // A bug, not bad input: say so rather than pass it off as a format problem.
            return "internal error: " + e;
        }
        return e.getMessage();
    }

    /**
     * The line for a load or compile failure of {@code file}, which the pipeline or host named {@code name}
     * (a module's name is the file's name alone): named by the path given, and a parse failure
     * said to be one, with LLVM's first line of diagnostics.
     */
    static String describeFailure(Path file, String name, String failure) {
        String message = firstLine(failure);
        if (!message.startsWith(name + ": ") && !message.startsWith(name + ".")) {
            return file + ": " + message;
        }
        String rest = message.substring(name.length());
        String parse = ": LLVM could not parse it: ";
        if (rest.startsWith(parse)) {
            String diagnostic = rest.substring(parse.length());
            if (diagnostic.startsWith(name)) {
                diagnostic = diagnostic.substring(name.length()).replaceFirst("^: ?", "");
            }
            String kind = file.getFileName().toString().endsWith(".bc") ? "not valid bitcode" : "not valid LLVM IR";
            return file + ": " + kind + ": " + diagnostic;
        }
        // NAME.FUNCTION or NAME.data for the objects of a lazily loaded source.
        return file + rest;
    }

    /** The first line of a message: LLVM's diagnostics follow theirs with the source line and a caret. */
    static String firstLine(String message) {
        String m = message == null ? "" : message.strip();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }
}
