package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * README.md: for {@code ProcessUnwinder.frames}, registers not known point into a zeroed area, so
 * a frame that needs one ends the list instead of sending libgcc into wild memory. A hand-made
 * stack returns into deep-fp.o's {@code deep_poll} after its prologue, where the CFA is RBP + 16:
 * with RBP not known the list stops after that frame, at a return address of 0 read from the
 * zeroed area; with RBP known, libgcc follows it to the caller the stack names. Run in a JVM of
 * its own ({@link #main}): were an unknown register wild, libgcc would crash the process.
 */
class UnknownRegistersTest {
    private static final int RBP = 1;   // calleeSaved order: RBX, RBP, R12-R15

    @Test
    void aFrameWhoseCfaNeedsAnUnknownRegisterEndsTheList(@TempDir Path tmp) throws Exception {
        List<String> command = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-XX:CompressedClassSpaceSize=128m",
                "-XX:ErrorFile=" + tmp.resolve("hs_err_pid%p.log"),
                "-Dsafepointkit.root=" + System.getProperty("safepointkit.root"), "-cp", System.getProperty("java.class.path"),
                UnknownRegistersTest.class.getName());
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child JVM still running");
        assertEquals(0, p.exitValue(), "child JVM failed (134: it crashed, in libgcc if an unknown register was "
                + "followed): " + output);
        assertEquals("ok", output.strip());
    }

    /** The case itself, in the child JVM: exits 1 on a wrong answer, crashes on a wild read. */
    public static void main(String[] args) throws Exception {
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            MemorySegment never = arena.allocate(16);   // never called: the code does not run
            host.defineRuntimeSymbol("deep_poll_java", never);
            host.defineRuntimeSymbol("record_entry", never);
            JitObject object = JitFixtures.load(host, "deep-fp");
            long poll = object.loaded().symbol("deep_poll").orElseThrow().address();
            long deep = object.loaded().symbol("deep").orElseThrow().address();
            // deep_poll: push rbp; mov rbp, rsp (0x1-0x4), then CFA = RBP + 16 up to 0xe.
            long inBody = poll + 0x9;

            MemorySegment stack = arena.allocate(256, 16);   // zeroed
            long slot = stack.address() + 64;
            stack.set(ValueLayout.JAVA_LONG, 64, inBody);
            long[] out = new long[16];

            // RBP unknown: the frame is listed, then a caller whose return address is the zero libgcc
            // read where the CFA led (the zeroed area), where nothing has unwind information: the end.
            int n = ProcessUnwinder.get().frames(slot, new long[6], 0, out);
            check(n == 2, "frames with RBP unknown: " + n);
            check(out[0] == inBody && out[1] == slot + 8, "the first frame is the one the slot returns into");
            check(out[2] == 0, "no return address past a frame whose CFA needs an unknown register: 0x"
                    + Long.toHexString(out[2]));

            // RBP known: [rbp] is deep's RBP, [rbp + 8] the return address into deep (after its
            // prologue, CFA = RBP + 16 too), whose own return address, at deep's RBP + 8, is 0.
            long rbp = stack.address() + 128;
            stack.set(ValueLayout.JAVA_LONG, 128, stack.address() + 192);
            stack.set(ValueLayout.JAVA_LONG, 136, deep + 0x20);
            long[] saved = new long[6];
            saved[RBP] = rbp;
            n = ProcessUnwinder.get().frames(slot, saved, 1 << RBP, out);
            check(n == 3, "frames with RBP known: " + n);
            check(out[2] == deep + 0x20 && out[3] == rbp + 16, "deep follows deep_poll through the known RBP");
            check(out[4] == 0, "then the end");
        }
        System.out.println("ok");
    }

    private static void check(boolean condition, String what) {
        if (!condition) {
            System.out.println("FAILED: " + what);
            System.exit(1);
        }
    }
}
