package dev.safepointkit.events.perf;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.internal.Libc;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Writes a jitdump file for {@code perf inject --jit}: the header, one JIT_CODE_LOAD record with
 * the code bytes per emitted function, and JIT_CODE_CLOSE on {@link #close}. Timestamps are
 * CLOCK_MONOTONIC ({@link System#nanoTime()} on Linux), so record with {@code perf record -k mono}.
 *
 * <p>perf learns of the file because the writer maps its first page PROT_READ|PROT_EXEC: the
 * mapping appears in perf.data as an executable mmap of {@code jit-<pid>.dump}. The mapping is
 * kept until {@link #close}.
 *
 * <p>Thread safe: records are written one at a time.
 */
public final class JitdumpWriter implements JitEventListener, AutoCloseable {
    static final int MAGIC = 0x4A695444;
    static final int VERSION = 1;
    static final int HEADER_SIZE = 40;
    static final int RECORD_HEADER_SIZE = 16;
    static final int JIT_CODE_LOAD = 0;
    static final int JIT_CODE_CLOSE = 3;
    static final int EM_X86_64 = 62;
    static final int EM_AARCH64 = 183;

    private final Path path;
    private final FileChannel channel;
    private final MemorySegment marker;
    private final int pid = (int) ProcessHandle.current().pid();
    private long codeIndex;
    private boolean closed;

    /**
     * Writes {@code DIRECTORY/jit-<pid>.dump}, with this process's pid.
     *
     * @param directory an existing directory; {@code perf inject} looks for the file where
     *     perf.data recorded its mapping, so any directory works
     * @return a writer that has written the header and mapped the marker page
     * @throws IOException if the file cannot be created or written
     */
    public static JitdumpWriter inDirectory(Path directory) throws IOException {
        return new JitdumpWriter(directory.resolve("jit-" + ProcessHandle.current().pid() + ".dump"));
    }

    /**
     * Writes {@code path}; perf expects the name {@code jit-<pid>.dump}. Creates or truncates the
     * file, writes the header and maps its first page executable, the mapping perf records.
     *
     * @param path the file to write
     * @throws IOException if the file cannot be created or written; a failure to map it is thrown
     *     unchecked
     */
    public JitdumpWriter(Path path) throws IOException {
        this.path = path;
        this.channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE, StandardOpenOption.READ);
        ByteBuffer header = ByteBuffer.allocate(HEADER_SIZE).order(ByteOrder.nativeOrder());
        header.putInt(MAGIC).putInt(VERSION).putInt(HEADER_SIZE).putInt(machine()).putInt(0).putInt(pid)
                .putLong(System.nanoTime()).putLong(0);
        write(header.flip());
        int fd = Libc.open(path.toString(), Libc.O_RDWR);
        try {
            marker = Libc.mmap(Libc.pageSize(), Libc.PROT_READ | Libc.PROT_EXEC, Libc.MAP_PRIVATE, fd, 0);
        } finally {
            Libc.close(fd);
        }
    }

    private static int machine() {
        return switch (System.getProperty("os.arch")) {
            case "aarch64" -> EM_AARCH64;
            default -> EM_X86_64;
        };
    }

    /**
     * The file this writer writes.
     *
     * @return the path given to the constructor
     */
    public Path path() {
        return path;
    }

    /**
     * Appends a JIT_CODE_LOAD record with the function's name, address and code bytes; does
     * nothing after {@link #close}.
     *
     * @param function the function just loaded
     * @throws java.io.UncheckedIOException if the record cannot be written
     */
    @Override
    public synchronized void functionEmitted(EmittedFunction function) {
        if (closed) {
            return;
        }
        byte[] name = (function.name() + "\0").getBytes(StandardCharsets.UTF_8);
        MemorySegment code = function.code();
        int total = RECORD_HEADER_SIZE + 40 + name.length + (int) code.byteSize();
        ByteBuffer record = ByteBuffer.allocate(total).order(ByteOrder.nativeOrder());
        record.putInt(JIT_CODE_LOAD).putInt(total).putLong(System.nanoTime());
        record.putInt(pid).putInt(Libc.gettid()).putLong(function.address()).putLong(function.address())
                .putLong(code.byteSize()).putLong(codeIndex++);
        record.put(name);
        record.put(code.toArray(ValueLayout.JAVA_BYTE));
        write(record.flip());
    }

    private void write(ByteBuffer bytes) {
        try {
            while (bytes.hasRemaining()) {
                channel.write(bytes);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("writing " + path, e);
        }
    }

    /** Writes JIT_CODE_CLOSE, unmaps the marker page and closes the file. */
    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        ByteBuffer record = ByteBuffer.allocate(RECORD_HEADER_SIZE).order(ByteOrder.nativeOrder());
        record.putInt(JIT_CODE_CLOSE).putInt(RECORD_HEADER_SIZE).putLong(System.nanoTime());
        write(record.flip());
        Libc.munmap(marker);
        channel.close();
    }
}
