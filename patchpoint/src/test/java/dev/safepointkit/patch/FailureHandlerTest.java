package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A failure handler that throws when told of a failed lazy compile: thrown through the stub's
 * upcall, its exception would end the JVM without a word, and the call would go on into the
 * fallback as if the failure had been heard. The patcher halts instead, saying both. Run in a JVM
 * of its own ({@link #main}), since the case ends it.
 */
class FailureHandlerTest {
    @Test
    void aFailureHandlerThatThrowsHaltsTheProcessNamingTheFunctionAndWhatItThrew(@TempDir Path tmp) throws Exception {
        List<String> command = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-XX:ErrorFile=" + tmp.resolve("hs_err_pid%p.log"),
                "-Dsafepointkit.root=" + System.getProperty("safepointkit.root"), "-cp", System.getProperty("java.class.path"),
                FailureHandlerTest.class.getName());
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child JVM still running");
        assertEquals(70, p.exitValue(), "the child did not halt with status 70: " + output);
        assertTrue(output.contains("safepointkit patch: lazy compile of 'g' failed: no IR for g; the failure handler threw"
                + " java.lang.IllegalStateException: handler down; halting"), output);
        assertTrue(!output.contains("went on"), output);
    }

    /** The case, in the child JVM: g's compile fails, its handler throws, and g has a fallback. */
    public static void main(String[] args) throws Throwable {
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            CodePatcher patcher = new CodePatcher(host, null, failure -> {
                throw new IllegalStateException("handler down");
            });
            FunctionDescriptor longLong = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);
            MethodHandle minusOne = MethodHandles.dropArguments(MethodHandles.constant(long.class, -1L), 0, long.class);
            MemorySegment fallback = Linker.nativeLinker().upcallStub(minusOne, longLong, arena);
            patcher.declare("g", fn -> {
                throw new IllegalStateException("no IR for " + fn);
            }, fallback.address());
            PatchFixtures.load(host, "lazy_caller");
            long r = (long) host.downcall("f0", longLong).invokeExact(5L);
            System.out.println("went on: f0(5) = " + r);
        }
    }
}
