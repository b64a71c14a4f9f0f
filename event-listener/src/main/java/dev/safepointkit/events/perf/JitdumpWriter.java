package dev.safepointkit.events.perf;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.events.SourceLine;
import dev.safepointkit.events.internal.Libc;
import dev.safepointkit.stackmap.dwarf.CfiFormatException;
import dev.safepointkit.stackmap.dwarf.EhFrame;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Writes a jitdump file for {@code perf inject --jit}: the header, one JIT_CODE_LOAD record with
 * the code bytes per emitted function, and JIT_CODE_CLOSE on {@link #close}. Timestamps are
 * CLOCK_MONOTONIC ({@link System#nanoTime()} on Linux), so record with {@code perf record -k mono}.
 *
 * <p>Before the JIT_CODE_LOAD of a function that has an FDE in its object's loaded
 * {@code .eh_frame} starting at its first byte, a JIT_CODE_UNWINDING_INFO record gives unwinding
 * data for it; perf attaches it to the next load, and {@code perf report} of a
 * {@code --call-graph dwarf} profile then unwinds through the function to its callers. The data
 * is the whole object's {@code .eh_frame} with one {@code .eh_frame_hdr}, padded so that it lies at
 * the same address, past the object's code, for every function: perf maps each function's data
 * right after its code, where the next function's code is, and its unwinder reads the data
 * through whichever mapping holds the address ({@link JitdumpUnwinding} says why and when a
 * function gets its own FDE alone instead). A function without an FDE (llc writes none for
 * {@code nounwind} without {@code uwtable}) gets none, and perf's unwind stops there.
 *
 * <p>The shared layout needs each object's functions in ascending address order (JitHost emits
 * them so): a function's mapping reaches from its code to past the object's code, so a lower
 * function loaded after a higher one would cover that one's code. When a function of an object
 * starts below one emitted before it, that function and the object's later ones get their own
 * FDE alone, and that function's {@link #functionEmitted} throws, after writing its
 * JIT_CODE_LOAD, saying so (once per object). An {@code .eh_frame} that cannot be parsed is
 * reported the same way by the object's first function, whose JIT_CODE_LOAD is still written; the
 * object's functions then get no JIT_CODE_UNWINDING_INFO.
 *
 * <p>Before the JIT_CODE_LOAD of a function with {@link EmittedFunction#lines() source lines}
 * (its object had a {@code .debug_line}), a JIT_CODE_DEBUG_INFO record gives them, one entry
 * per line table row inside the function: absolute address, line, discriminator and file name
 * (written out in every entry). {@code perf inject --jit} turns it into the line table of the
 * function's ELF, so {@code perf report --sort srcline} and {@code perf annotate} show source lines.
 * When the host could not read the object's line table ({@link LoadedObject#lineTableProblem()}),
 * its functions get no JIT_CODE_DEBUG_INFO, and the first function's {@link #functionEmitted}
 * throws, after writing its JIT_CODE_LOAD, with the problem: the dispatcher's failure handler
 * reports it, and since this listener is an observer the load and the jitdump go on.
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
    static final int JIT_CODE_DEBUG_INFO = 2;
    static final int JIT_CODE_CLOSE = 3;
    /** JIT_CODE_DEBUG_INFO's fields after the record header: code_addr, nr_entry. */
    static final int DEBUG_INFO_FIELDS = 16;
    /** A debug entry's fields before its name: code_addr, line, discrim. */
    static final int DEBUG_ENTRY_FIELDS = 16;
    static final int JIT_CODE_UNWINDING_INFO = 4;
    /** JIT_CODE_UNWINDING_INFO's fields after the record header: unwinding_size, eh_frame_hdr_size, mapped_size. */
    static final int UNWINDING_INFO_FIELDS = 24;
    static final int EM_X86_64 = 62;
    static final int EM_AARCH64 = 183;

    private final Path path;
    private final FileChannel channel;
    private final MemorySegment marker;
    private final int pid = (int) ProcessHandle.current().pid();
    private long codeIndex;
    private boolean closed;
    /** The parsed {@code .eh_frame} of the object whose functions are being written (its key), or null. */
    private LoadedObject unwindObject;
    private EhFrame unwindFrame;
    private MemorySegment unwindSection;
    /** That object's shared unwinding data, or null when each function gets its own. */
    private JitdumpUnwinding.ObjectLayout unwindLayout;
    /** The highest function address of that object so far. */
    private long unwindHighest;
    /** Whether that object's functions came out of address order (reported once). */
    private boolean unwindOutOfOrder;
    /** The last object whose line table problem was reported, so it is reported once. */
    private LoadedObject reportedLineProblem;

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
     * @throws IllegalStateException after writing the JIT_CODE_LOAD, once per object, when its line
     *     table or {@code .eh_frame} could not be read or its functions came out of address order
     */
    @Override
    public synchronized void functionEmitted(EmittedFunction function) {
        if (closed) {
            return;
        }
        writeDebugInfo(function);
        String unwindingProblem = writeUnwindingInfo(function);
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
        List<String> problems = new ArrayList<>();
        if (unwindingProblem != null) {
            problems.add(unwindingProblem);
        }
        Optional<String> problem = function.object().lineTableProblem();
        if (problem.isPresent() && reportedLineProblem != function.object()) {
            reportedLineProblem = function.object();
            problems.add("no JIT_CODE_DEBUG_INFO for " + function.object().name() + ": " + problem.get());
        }
        if (!problems.isEmpty()) {
            throw new IllegalStateException(String.join("; ", problems));
        }
    }

    /** The JIT_CODE_DEBUG_INFO record for {@code function}, when it has source lines. */
    private void writeDebugInfo(EmittedFunction function) {
        if (function.lines().isEmpty()) {
            return;
        }
        List<byte[]> names = new ArrayList<>();
        long total = RECORD_HEADER_SIZE + DEBUG_INFO_FIELDS;
        for (SourceLine line : function.lines()) {
            byte[] file = (line.file() + "\0").getBytes(StandardCharsets.UTF_8);
            names.add(file);
            total += DEBUG_ENTRY_FIELDS + file.length;
        }
        if (total > Integer.MAX_VALUE) {
            throw new IllegalStateException(function.name() + ": its source lines do not fit a jitdump record");
        }
        ByteBuffer record = ByteBuffer.allocate((int) total).order(ByteOrder.nativeOrder());
        record.putInt(JIT_CODE_DEBUG_INFO).putInt((int) total).putLong(System.nanoTime());
        record.putLong(function.address()).putLong(function.lines().size());
        for (int i = 0; i < names.size(); i++) {
            SourceLine line = function.lines().get(i);
            record.putLong(line.address()).putInt(line.line()).putInt(line.discriminator()).put(names.get(i));
        }
        write(record.flip());
    }

    /**
     * The JIT_CODE_UNWINDING_INFO record for {@code function}, when its object has an FDE starting
     * there; returns the problem to report once written, or null.
     */
    private String writeUnwindingInfo(EmittedFunction function) {
        LoadedObject object = function.object();
        String problem = null;
        if (unwindObject != object) {
            unwindObject = object;
            unwindFrame = null;
            unwindSection = null;
            unwindLayout = null;
            unwindHighest = function.address();
            unwindOutOfOrder = false;
            Optional<LoadedSection> ehFrame = object.section(".eh_frame");
            if (ehFrame.isPresent() && ehFrame.get().size() > 0) {
                // The host placed the section there, sh_size bytes, readable until objectFreeing.
                unwindSection = MemorySegment.ofAddress(ehFrame.get().address()).reinterpret(ehFrame.get().size());
                try {
                    unwindFrame = EhFrame.parse(unwindSection, unwindSection.address());
                    unwindLayout = JitdumpUnwinding.objectLayout(object, unwindSection, unwindFrame.fdes(), Libc.pageSize(),
                            JitdumpUnwinding.PADDING_BUDGET);
                } catch (CfiFormatException e) {
                    unwindFrame = null;
                    unwindSection = null;
                    return "no JIT_CODE_UNWINDING_INFO for " + object.name() + ": its .eh_frame cannot be read for perf: "
                            + e.getMessage();
                }
            }
        }
        if (unwindFrame == null) {
            return null;
        }
        if (Long.compareUnsigned(function.address(), unwindHighest) < 0) {
            unwindLayout = null;
            if (!unwindOutOfOrder) {
                unwindOutOfOrder = true;
                problem = object.name() + ": " + function.name() + " at 0x" + Long.toHexString(function.address())
                        + " was emitted after a function at 0x" + Long.toHexString(unwindHighest)
                        + ": the shared unwinding layout needs ascending addresses, so it and the object's later"
                        + " functions get their own FDE alone";
            }
        } else {
            unwindHighest = function.address();
        }
        EhFrame.Fde fde = unwindFrame.fdeFor(function.address());
        if (fde == null || fde.pcBegin() != function.address()) {
            return problem;
        }
        JitdumpUnwinding.Data data = unwindLayout == null ? null : unwindLayout.forFunction(function.address(), function.size());
        if (data == null) {
            data = JitdumpUnwinding.build(unwindSection, fde, function.size());
        }
        byte[] bytes = data.bytes();
        int padded = (bytes.length + 7) & ~7;
        int total = RECORD_HEADER_SIZE + UNWINDING_INFO_FIELDS + padded;
        ByteBuffer record = ByteBuffer.allocate(total).order(ByteOrder.nativeOrder());
        record.putInt(JIT_CODE_UNWINDING_INFO).putInt(total).putLong(System.nanoTime());
        // mapped_size: perf maps the unwinding data right after the code, as much as there is.
        record.putLong(bytes.length).putLong(data.hdrSize()).putLong(bytes.length);
        record.put(bytes);
        write(record.position(total).flip());
        return problem;
    }

    /** Forgets the object's parsed {@code .eh_frame}: its memory goes away after this call. */
    @Override
    public synchronized void objectFreeing(LoadedObject object) {
        if (unwindObject == object) {
            unwindObject = null;
            unwindFrame = null;
            unwindSection = null;
            unwindLayout = null;
        }
        if (reportedLineProblem == object) {
            reportedLineProblem = null;
        }
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
