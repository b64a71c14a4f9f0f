package dev.safepointkit.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.stackmap.testing.LlvmTools;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * binary-trees, LLVM-compiled with statepoints, on the copying collector: the output is the
 * program's known output, and the collector really ran (moving every live object each time and
 * poisoning what it left).
 */
class BinaryTreesTest {

    @ParameterizedTest(name = "depth {0}, {1} threads, stress {2}")
    @CsvSource({"10, 1, false", "10, 4, false", "6, 1, true", "6, 4, true"})
    void computesTheKnownOutputWhileCollecting(int depth, int threads, boolean stress) throws Throwable {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        // A small heap so that the normal mode collects many times too.
        BinaryTrees.Result result = BinaryTrees.run(new BinaryTrees.Options(depth, threads, stress, 512 * 1024, false),
                new PrintStream(out, true), new PrintStream(new ByteArrayOutputStream()));
        assertTrue(result.verified(), () -> String.join("\n", result.problems()));
        List<String> expected = depth == 10 ? List.of(
                "stretch tree of depth 11\t check: 4095",
                "1024\t trees of depth 4\t check: 31744",
                "256\t trees of depth 6\t check: 32512",
                "64\t trees of depth 8\t check: 32704",
                "16\t trees of depth 10\t check: 32752",
                "long lived tree of depth 10\t check: 2047")
                : List.of(
                "stretch tree of depth 7\t check: 255",
                "64\t trees of depth 4\t check: 1984",
                "16\t trees of depth 6\t check: 2032",
                "long lived tree of depth 6\t check: 127");
        assertEquals(expected, result.lines());
        assertEquals(String.join(System.lineSeparator(), expected) + System.lineSeparator(), out.toString());
        assertTrue(result.collections() >= (stress ? 1000 : 5), "collections: " + result.collections());
        assertTrue(result.framesWalked() > result.collections(), "frames walked: " + result.framesWalked());
        assertTrue(result.rootsVisited() > result.collections(), "roots: " + result.rootsVisited());
        assertEquals(result.collections(), result.pauses().getTotalCount());
        assertEquals(0, result.registerRootsAbove(), "binarytrees.o spills every GC pointer at its calls");
    }

    /**
     * binarytrees-gcregs.o keeps GC pointers in callee-saved registers across calls: the collector
     * finds them in whichever callee's frame saved the register (through the unwind plans), in the
     * polling frame where the runtime's poll saved it, and moves them; stale ones would read poison.
     */
    @ParameterizedTest(name = "gc-regs, depth {0}, {1} threads, stress {2}, cross-check {3}, nested {4}")
    @CsvSource({"10, 2, false, false, false", "6, 1, true, false, false", "6, 4, true, true, false", "8, 2, true, false, true",
        "6, 2, true, true, true"})
    void gcPointersInCalleeSavedRegistersAreFoundAndMovedAtEveryDepth(int depth, int threads, boolean stress, boolean check,
                                                                      boolean nested) throws Throwable {
        BinaryTrees.Result result = BinaryTrees.run(new BinaryTrees.Options(depth, threads, stress, 512 * 1024, false,
                Optional.empty(), nested, true, check), new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(new ByteArrayOutputStream()));
        assertTrue(result.verified(), () -> String.join("\n", result.problems()));
        assertEquals("long lived tree of depth " + Math.max(6, depth) + "\t check: " + ((1L << (Math.max(6, depth) + 1)) - 1),
                result.lines().getLast());
        assertTrue(result.collections() >= (stress ? 1000 : 5), "collections: " + result.collections());
        assertTrue(result.registerRootsAbove() > result.collections(),
                "roots in callee-saved registers above the polling frame: " + result.registerRootsAbove());
    }

    @Test
    void compilesTheIrAtRunTimeThroughTheLlvmBridge() throws Exception {
        LlvmTools.requireAvailable(LlvmCompiler::open);
        BinaryTrees.Result result = BinaryTrees.run(new BinaryTrees.Options(10, 2, false, 256 * 1024, true),
                new PrintStream(new ByteArrayOutputStream()), new PrintStream(new ByteArrayOutputStream()));
        assertTrue(result.verified(), () -> String.join("\n", result.problems()));
        assertEquals("long lived tree of depth 10\t check: 2047", result.lines().getLast());
        assertTrue(result.collections() >= 3, "collections: " + result.collections());
    }
}
