package dev.safepointkit.compile;

import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Cuts one function at a time out of a large globalized module without copying the whole module
 * for each: a binary tree of partial copies, each defining a contiguous range of the module's
 * functions (and all of its global variables), made on first need by copying its parent and
 * dropping the other half. A function's cut is then taken from a leaf of at most {@value #LEAF}
 * functions. The first cut copies about twice the module; cuts of functions near it reuse the
 * path, so a program that reaches a few functions copies far less than once per function.
 *
 * <p>Every copy lives in the source module's context, and goes with it. Not thread safe: the
 * pipeline's lock guards it, like the context.
 */
final class FunctionPartitions {
    static final int LEAF = 16;

    private final Llvm llvm;
    private final String what;
    private final List<String> functions;
    private final Map<String, Integer> index = new HashMap<>();
    private final Node root;

    /** A copy defining the functions in [from, to) of the module order; children made on demand. */
    private static final class Node {
        final int from;
        final int to;
        final MemorySegment module;
        Node low;
        Node high;

        Node(int from, int to, MemorySegment module) {
            this.from = from;
            this.to = to;
            this.module = module;
        }
    }

    /**
     * @param module the globalized source module; stays the caller's (it is the root, never disposed here)
     * @param functions the functions it defines, in module order
     */
    FunctionPartitions(Llvm llvm, String what, MemorySegment module, List<String> functions) {
        this.llvm = llvm;
        this.what = what;
        this.functions = List.copyOf(functions);
        for (int i = 0; i < functions.size(); i++) {
            index.put(functions.get(i), i);
        }
        this.root = new Node(0, functions.size(), module);
    }

    /** The bitcode of a module that defines {@code function} alone, as {@link ModuleShapes#cut} makes it. */
    byte[] cut(String function) throws Throwable {
        Integer at = index.get(function);
        if (at == null) {
            throw new IllegalArgumentException(what + " does not define '" + function + "'");
        }
        Node n = root;
        while (n.to - n.from > LEAF) {
            int mid = (n.from + n.to) >>> 1;
            if (at < mid) {
                n = n.low != null ? n.low : (n.low = child(n, n.from, mid));
            } else {
                n = n.high != null ? n.high : (n.high = child(n, mid, n.to));
            }
        }
        return ModuleShapes.cut(llvm, what + "." + function, n.module, function);
    }

    private Node child(Node parent, int from, int to) throws Throwable {
        MemorySegment copy = ModuleShapes.copyKeeping(llvm, what, parent.module, g -> {
            if (!g.function()) {
                return true;
            }
            Integer i = index.get(g.name());
            return i != null && i >= from && i < to;
        });
        return new Node(from, to, copy);
    }
}
