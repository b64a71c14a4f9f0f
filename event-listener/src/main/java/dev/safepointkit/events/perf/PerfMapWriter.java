package dev.safepointkit.events.perf;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventListener;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Writes a perf map, {@code /tmp/perf-<pid>.map} by default: one line per emitted function,
 * {@code START SIZE name} with START and SIZE in hex without {@code 0x}, so that {@code perf report}
 * names JIT frames. Lines are flushed as they are written, since perf reads the file after the
 * process may have died. Entries are never removed: perf maps have no way to say so.
 *
 * <p>Thread safe: writes are serialized.
 */
public final class PerfMapWriter implements JitEventListener, AutoCloseable {
    private final Path path;
    private final BufferedWriter out;

    /**
     * Writes {@code /tmp/perf-<pid>.map} for this process, where perf looks for it.
     *
     * @throws IOException if the file cannot be opened for appending
     */
    public PerfMapWriter() throws IOException {
        this(Path.of("/tmp", "perf-" + ProcessHandle.current().pid() + ".map"));
    }

    /**
     * Appends to {@code path}, creating it if needed; lines already there are kept.
     *
     * @param path the map file; perf reads only {@code /tmp/perf-<pid>.map}
     * @throws IOException if the file cannot be opened for appending
     */
    public PerfMapWriter(Path path) throws IOException {
        this.path = path;
        this.out = Files.newBufferedWriter(path, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND, StandardOpenOption.WRITE);
    }

    /**
     * The file this writer appends to.
     *
     * @return the path given to the constructor
     */
    public Path path() {
        return path;
    }

    /**
     * Appends and flushes the function's line.
     *
     * @param function the function just loaded
     * @throws java.io.UncheckedIOException if the line cannot be written, also after {@link #close}
     */
    @Override
    public synchronized void functionEmitted(EmittedFunction function) {
        try {
            out.write(Long.toHexString(function.address()) + " " + Long.toHexString(function.size()) + " "
                    + function.name() + "\n");
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("writing " + path, e);
        }
    }

    /**
     * Closes the file; later functions fail with {@link java.io.UncheckedIOException}.
     *
     * @throws IOException if closing the file fails
     */
    @Override
    public synchronized void close() throws IOException {
        out.close();
    }
}
