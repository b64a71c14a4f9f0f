package dev.safepointkit.host;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * A native library jit-host's build compiles from {@code src/main/c} into the jar, loaded from a
 * copy in the temp directory (the dynamic loader, and gdb, which reads the library's symbols from
 * its path, need a file; it stays while the process runs). Stateless; any thread.
 */
final class BundledLibrary {
    private BundledLibrary() {
    }

    /**
     * Copies {@code resource} out of the jar and loads it for the life of the process.
     *
     * @param resource the library's path in the jar, relative to this package
     * @param tempPrefix the copy's file name prefix
     * @throws IllegalStateException if this is not Linux x86-64, the jar lacks the library, or the
     *     copy cannot be loaded
     */
    static SymbolLookup load(String resource, String tempPrefix) throws IOException {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch");
        if (!os.contains("linux") || !arch.equals("amd64") || ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new IllegalStateException("the jar's " + resource + " is built for Linux x86-64, not " + os + " " + arch);
        }
        Path file;
        try (InputStream in = BundledLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException(resource + " is missing from the jar (jit-host's build compiles it from src/main/c)");
            }
            file = Files.createTempFile(tempPrefix, ".so");
            file.toFile().deleteOnExit();
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
        }
        try {
            return SymbolLookup.libraryLookup(file, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException("cannot load " + file + " (is java.io.tmpdir mounted noexec?): " + e.getMessage(), e);
        }
    }
}
