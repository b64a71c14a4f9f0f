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

    /** Writes {@code /tmp/perf-<pid>.map} for this process. */
    public PerfMapWriter() throws IOException {
        this(Path.of("/tmp", "perf-" + ProcessHandle.current().pid() + ".map"));
    }

    public PerfMapWriter(Path path) throws IOException {
        this.path = path;
        this.out = Files.newBufferedWriter(path, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND, StandardOpenOption.WRITE);
    }

    public Path path() {
        return path;
    }

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

    @Override
    public synchronized void close() throws IOException {
        out.close();
    }
}
