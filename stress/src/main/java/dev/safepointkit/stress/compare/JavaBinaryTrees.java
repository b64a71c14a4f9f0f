package dev.safepointkit.stress.compare;

import java.util.ArrayList;
import java.util.List;

/**
 * binary-trees in plain Java, structured as the demo's program (dev.safepointkit.demo.BinaryTrees):
 * the stretch tree, a long-lived tree, then for each depth from 4 to the maximum in steps of 2 that
 * many trees split over THREADS threads, every check compared with its closed form. The collector
 * is whichever HotSpot runs (scripts/compare-binarytrees.sh: ParallelGC, pauses from -Xlog:gc).
 *
 * <p>{@code JavaBinaryTrees DEPTH THREADS}
 */
public final class JavaBinaryTrees {
    private static final int MIN_DEPTH = 4;
    private static int failures;

    private record Node(Node left, Node right) {
        long check() {
            return left == null ? 1 : 1 + left.check() + right.check();
        }
    }

    private JavaBinaryTrees() {
    }

    static Node bottomUpTree(int depth) {
        return depth <= 0 ? new Node(null, null) : new Node(bottomUpTree(depth - 1), bottomUpTree(depth - 1));
    }

    static long trees(int depth, long iterations) {
        long check = 0;
        for (long i = 0; i < iterations; i++) {
            check += bottomUpTree(depth).check();
        }
        return check;
    }

    static long nodes(int d) {
        return (1L << (d + 1)) - 1;
    }

    static void emit(String line, long check, long expected) {
        System.out.println(line);
        if (check != expected) {
            System.err.println("\"" + line + "\": expected check " + expected);
            failures++;
        }
    }

    public static void main(String[] args) throws Exception {
        int maxDepth = Math.max(MIN_DEPTH + 2, Integer.parseInt(args[0]));
        int threads = Integer.parseInt(args[1]);
        long start = System.nanoTime();
        int stretch = maxDepth + 1;
        long check = trees(stretch, 1);
        emit(String.format("stretch tree of depth %d\t check: %d", stretch, check), check, nodes(stretch));
        Node longLived = bottomUpTree(maxDepth);
        for (int d = MIN_DEPTH; d <= maxDepth; d += 2) {
            long iterations = 1L << (maxDepth - d + MIN_DEPTH);
            long[] checks = new long[threads];
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                long share = iterations / threads + (t < iterations % threads ? 1 : 0);
                int depth = d;
                int slot = t;
                workers.add(Thread.ofPlatform().start(() -> checks[slot] = trees(depth, share)));
            }
            check = 0;
            for (int t = 0; t < threads; t++) {
                workers.get(t).join();
                check += checks[t];
            }
            emit(String.format("%d\t trees of depth %d\t check: %d", iterations, d, check), check, iterations * nodes(d));
        }
        check = longLived.check();
        emit(String.format("long lived tree of depth %d\t check: %d", maxDepth, check), check, nodes(maxDepth));
        System.out.printf("java: run %.2f s; output %s%n", (System.nanoTime() - start) / 1e9, failures == 0 ? "verified" : "WRONG");
        System.exit(failures == 0 ? 0 : 1);
    }
}
