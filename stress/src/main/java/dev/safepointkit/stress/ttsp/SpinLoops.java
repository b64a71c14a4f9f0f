package dev.safepointkit.stress.ttsp;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.roots.Mutator;
import dev.safepointkit.roots.SafepointCoordinator;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The loops of fixtures/ttsp/src/spin.ll loaded into a JIT host whose {@code spk_poll} is
 * {@link SafepointCoordinator#poll} of this object's coordinator.
 *
 * <p>Threads: the downcalls may be called on any attached mutator thread, each with its own
 * context block; {@link #failures} from any thread; {@link #close} once, after every mutator has
 * left the loops.
 */
public final class SpinLoops implements AutoCloseable {
    /** Offset in the context block of the quit word {@code spin_until} reads after each poll it takes. */
    public static final long QUIT_WORD = Mutator.CLIENT_AREA;

    private final JitHost host = new JitHost();
    private final Arena upcalls = Arena.ofShared();
    private final SafepointCoordinator coordinator = new SafepointCoordinator(8);
    /** Refusals of the poll upcall, which cannot throw into JIT code; the harness checks it after each run. */
    private final List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
    private final MethodHandle spinUntil;
    private final MethodHandle spinPolled;
    private final MethodHandle spinPlain;

    public SpinLoops() throws IOException, JitLoadException {
        host.defineUpcall("spk_poll", coordinator.pollUpcall(failures::add), SafepointCoordinator.SLOT_UPCALL, upcalls);
        byte[] elf = Files.readAllBytes(root().resolve("fixtures/ttsp/x86_64/spin.o"));
        host.load("spin.o", MemorySegment.ofArray(elf));
        spinUntil = host.downcall("spin_until", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
        FunctionDescriptor counted = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG);
        spinPolled = host.downcall("spin_polled", counted);
        spinPlain = host.downcall("spin_plain", counted);
    }

    /** The project root, from the {@code safepointkit.root} property (set by the build and the script). */
    private static Path root() {
        String property = System.getProperty("safepointkit.root");
        if (property == null) {
            throw new IllegalStateException("set -Dsafepointkit.root to the project root: the loops are in fixtures/ttsp");
        }
        return Path.of(property);
    }

    public SafepointCoordinator coordinator() {
        return coordinator;
    }

    /** Spins in JIT code until a stop finds {@link #QUIT_WORD} set in {@code context}. */
    public long spinUntil(MemorySegment context) throws Throwable {
        return (long) spinUntil.invokeExact(context);
    }

    /** {@code n} (at least 1) iterations with a poll on each back edge. */
    public long spinPolled(MemorySegment context, long n) throws Throwable {
        return (long) spinPolled.invokeExact(context, n);
    }

    /** The same {@code n} iterations without polls. */
    public long spinPlain(MemorySegment context, long n) throws Throwable {
        return (long) spinPlain.invokeExact(context, n);
    }

    /**
     * Fails with the first refusal the poll upcall reported, if any.
     *
     * @throws IllegalStateException naming it
     */
    public void checkNoFailures() {
        synchronized (failures) {
            if (!failures.isEmpty()) {
                IllegalStateException e = new IllegalStateException(failures.size() + " poll(s) from JIT code were refused");
                failures.forEach(e::addSuppressed);
                throw e;
            }
        }
    }

    @Override
    public void close() {
        host.close();
        upcalls.close();
    }
}
