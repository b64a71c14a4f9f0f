package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The process unwinder (libgcc, as glibc's backtrace() and C++ exceptions use it) crossing real
 * JIT frames: fixtures unwind.ll and catch.ll with the C++ runtime of {@link UnwindRuntime}. A
 * C++ exception that cannot cross JIT frames aborts the process, so those cases run in a child
 * JVM ({@link UnwindChild}) and are judged by its output and exit code.
 */
class UnwindTest {
    private static Path library;

    @BeforeAll
    static void buildRuntime() {
        library = UnwindRuntime.load();
    }

    /** Where each of {@code frames} lies: the JIT function holding it, or "-" for anything else. */
    private static List<String> where(long[] frames, JitObject object) {
        List<String> names = new ArrayList<>();
        for (long pc : frames) {
            String name = "-";
            for (EmittedFunction f : object.functions()) {
                // A return address may be one past its call at the very end of a function.
                if (pc > f.address() && pc <= f.address() + f.size()) {
                    name = f.name();
                }
            }
            names.add(name);
        }
        return names;
    }

    /** Calls bt_outer, whose chain ends in rt_backtrace, and returns where the backtrace's frames lie. */
    private static List<String> backtraceThrough(JitHost host, JitObject object) throws Throwable {
        assertEquals(8L, (long) host.downcall("bt_outer", UnwindRuntime.LONG_LONG).invokeExact(5L));
        return where(UnwindRuntime.lastBacktrace(), object);
    }

    @Test
    void backtraceFromARuntimeFunctionListsEveryJitFrameOfTheChain() throws Throwable {
        try (JitHost host = new JitHost()) {
            JitObject unwind = JitFixtures.load(host, "unwind");
            List<String> frames = backtraceThrough(host, unwind);
            // Frame 0 is rt_backtrace itself; then the whole JIT chain, innermost first.
            String chain = String.join(",", frames);
            assertTrue(chain.startsWith("-,bt_inner,bt_middle,bt_outer,"), "backtrace() saw " + frames.size()
                    + " frames: " + chain);
        }
    }

    @Test
    void backtraceCrossesACallThatWentThroughAFarCallTrampoline() throws Throwable {
        try (JitHost host = new JitHost()) {
            JitObject far = JitFixtures.load(host, "unwind-static");
            CallSite call = host.symbol("rt_backtrace").orElseThrow().callSites().getFirst();
            assertTrue(call.viaTrampoline(), "unwind-static.o is mapped low, the runtime is not: " + call);
            long trampoline = call.address() + 4 + MemorySegment.ofAddress(call.address()).reinterpret(4)
                    .get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            assertTrue(host.farCallTarget(trampoline).isPresent());
            long[] frames;
            assertEquals(8L, (long) host.downcall("bt_outer", UnwindRuntime.LONG_LONG).invokeExact(5L));
            frames = UnwindRuntime.lastBacktrace();
            String chain = String.join(",", where(frames, far));
            // The trampoline is a jmp: it pushed nothing, so the runtime returns straight into bt_inner.
            assertTrue(chain.startsWith("-,bt_inner,bt_middle,bt_outer,"), chain);
            for (long pc : frames) {
                assertTrue(pc < trampoline || pc >= trampoline + FarCallTrampoline.SIZE,
                        "a frame inside the trampoline at 0x" + Long.toHexString(trampoline));
            }
        }
    }

    @Test
    void backtracesOnAnotherThreadSeeTheWholeChainWhileObjectsAreRegisteredAndDeregistered() throws Throwable {
        // libgcc serializes registration against unwinding with its own lock: a thread unwinding
        // through unwind.o never misses a frame while the main thread loads and unloads math.o.
        try (JitHost host = new JitHost(); JitHost churn = new JitHost()) {
            JitObject unwind = JitFixtures.load(host, "unwind");
            MethodHandle outer = host.downcall("bt_outer", UnwindRuntime.LONG_LONG);
            AtomicBoolean done = new AtomicBoolean();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            int[] walks = {0};   // the walker's alone; read after join()
            Thread walker = new Thread(() -> {
                try {
                    while (!done.get()) {
                        // rt_backtrace's buffer is the runtime's only state: this thread alone uses it meanwhile.
                        assertEquals(8L, (long) outer.invokeExact(5L));
                        String chain = String.join(",", where(UnwindRuntime.lastBacktrace(), unwind));
                        assertTrue(chain.startsWith("-,bt_inner,bt_middle,bt_outer,"), chain);
                        walks[0]++;
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            walker.start();
            try {
                for (int i = 0; i < 200 && failure.get() == null; i++) {
                    churn.unload(JitFixtures.load(churn, "math"), false);
                }
            } finally {
                done.set(true);
                walker.join();
            }
            if (failure.get() != null) {
                throw failure.get();
            }
            assertTrue(walks[0] > 0, "the walker never ran");
        }
    }

    /** Runs {@link UnwindChild} with {@code arguments}; returns its output after checking it exited 0. */
    private static String child(String... arguments) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                // A small class space, as for the tests themselves (see the POM): room for MAP_32BIT.
                "--enable-native-access=ALL-UNNAMED", "-XX:CompressedClassSpaceSize=128m", "-cp", System.getProperty("java.class.path"),
                UnwindChild.class.getName(), library.toString(), JitFixtures.object("unwind").getParent().toString()));
        command.addAll(Arrays.asList(arguments));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child JVM still running");
        assertEquals(0, p.exitValue(), "child JVM " + String.join(" ", arguments) + " failed (134: aborted, the "
                + "exception could not cross a frame):\n" + output);
        return output.lines().filter(l -> l.startsWith("outcome=") || l.startsWith("registrations "))
                .collect(Collectors.joining("\n"));
    }

    @Test
    void aCppExceptionCrossesJitFramesToACppCatchBelowThem() throws Exception {
        assertEquals("outcome=1 value=42\nregistrations loaded=1 unloaded=0", child("through", "unwind.o"));
    }

    @Test
    void aCppExceptionCrossesJitFramesThatCalledThroughFarCallTrampolines() throws Exception {
        assertEquals("outcome=1 value=42\nregistrations loaded=1 unloaded=0", child("through", "unwind-static.o"));
    }

    @Test
    void jitCodeWithALandingPadCatchesACppException() throws Exception {
        // catch_long(7) caught 7 in its own landingpad; catch_long(0) returned normally.
        assertEquals("outcome=-1 value=1007\nregistrations loaded=1 unloaded=0", child("landingpad"));
    }

    @Test
    void aSecondDeregistrationIsRefusedBeforeItReachesLibgcc() throws Exception {
        // In a child JVM: a second call that reached libgcc's __deregister_frame would abort the process.
        assertEquals("outcome=refused value=0\nregistrations loaded=0 unloaded=0", child("twice"),
                "the second deregister throws and leaves the count of live registrations as it was");
    }

    @Test
    void unloadDeregistersEveryObjectsEhFrame() throws Throwable {
        long before = JitHost.liveEhFrameRegistrations();
        try (JitHost host = new JitHost()) {
            JitObject unwind = JitFixtures.load(host, "unwind");
            JitFixtures.load(host, "catch");
            assertEquals(before + 2, JitHost.liveEhFrameRegistrations());
            host.unload(unwind, false);
            assertEquals(before + 1, JitHost.liveEhFrameRegistrations());
        }
        assertEquals(before, JitHost.liveEhFrameRegistrations(), "close unloads, and unloading deregisters");
    }

    @Test
    void aLoadThatFailsAfterRegisteringDeregisters() throws Throwable {
        long before = JitHost.liveEhFrameRegistrations();
        long[] duringLoad = {-1};
        try (JitHost host = new JitHost()) {
            host.addListener(new JitEventListener() {
                @Override
                public boolean required() {
                    return true;
                }

                @Override
                public void objectLoaded(LoadedObject object) {
                    duringLoad[0] = JitHost.liveEhFrameRegistrations();
                    throw new IllegalStateException("refused");
                }
            });
            long mappings = JitHost.liveMappings();
            assertThrows(JitLoadException.class, () -> JitFixtures.load(host, "unwind"));
            assertEquals(mappings, JitHost.liveMappings());
        }
        assertEquals(before + 1, duringLoad[0], "registered by the time listeners hear of it");
        assertEquals(before, JitHost.liveEhFrameRegistrations(), "the failed load deregistered it");
    }

    @Test
    void aLoadRefusedAfterRegisteringButBeforeListenersDeregisters() throws Throwable {
        // safepoints.o with stack map version 9: registered right after linking, refused while the
        // host reads its stack maps.
        byte[] bytes = ObjectEditor.of("safepoints").sectionBytes(".llvm_stackmaps", 0, 1, 9).bytes();
        long before = JitHost.liveEhFrameRegistrations();
        try (JitHost host = new JitHost()) {
            host.defineRuntimeSymbol("host_poll", MemorySegment.ofAddress(0x10000));   // never called
            JitLoadException e = assertThrows(JitLoadException.class, () -> host.load("bad.o", MemorySegment.ofArray(bytes)));
            assertTrue(e.getMessage().contains("version 9"), e.getMessage());
        }
        assertEquals(before, JitHost.liveEhFrameRegistrations(), "the refused load deregistered it");
    }

    @Test
    void staticModelExceptionTablesOutOfRangeAreRefusedNamingTheRelocation() throws Throwable {
        long before = JitHost.liveEhFrameRegistrations();
        try (JitHost host = new JitHost()) {
            long mappings = JitHost.liveMappings();
            JitLoadException e = assertThrows(JitLoadException.class, () -> JitFixtures.load(host, "catch-static"));
            assertTrue(e.getMessage().startsWith("catch-static.o: relocation R_X86_64_32 against '_ZTIl' in "
                    + ".gcc_except_table at offset 0x10 is out of range"), e.getMessage());
            assertTrue(e.getMessage().contains("compile with -relocation-model=pic"), e.getMessage());
            assertEquals(mappings, JitHost.liveMappings());
        }
        assertEquals(before, JitHost.liveEhFrameRegistrations());
    }

    @Test
    void theHiddenPersonalityPointerStaysInsideItsObject() throws Throwable {
        try (JitHost host = new JitHost()) {
            JitObject object = JitFixtures.load(host, "catch");
            String ref = "DW.ref.__gxx_personality_v0";
            assertTrue(object.loaded().symbol(ref).isPresent(), "loaded, as the object's own data");
            assertTrue(!object.loaded().symbol(ref).orElseThrow().global(), "hidden: not a global");
            assertTrue(host.address(ref).isEmpty(), "not in the host's global symbols");
            // Each object has its own: a second object with the same hidden symbol loads beside it.
            JitObject again = host.load("catch-again.o", renamed());
            assertTrue(again.loaded().symbol(ref).orElseThrow().address() != object.loaded().symbol(ref).orElseThrow().address());
        }
    }

    /** catch.o with its only global renamed, so that it can load beside catch.o. */
    private static MemorySegment renamed() throws Exception {
        ObjectEditor edit = ObjectEditor.of("catch");
        // "catch_long" -> "catch_lonG": the string table entry, one byte changed.
        byte[] bytes = edit.bytes();
        long name = edit.nameOffset("catch_long") + edit.section(".strtab").offset() + "catch_lon".length();
        bytes[(int) name] = 'G';
        return MemorySegment.ofArray(bytes);
    }
}
