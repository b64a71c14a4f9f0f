package dev.safepointkit.compile;

import dev.safepointkit.host.JitLoadException;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntPredicate;

/**
 * Cuts one function (or the data) at a time out of a large globalized module without copying
 * the module. The module is written to bitcode once. A cut reads bitcode back lazily (the
 * module-level records only; no function body is parsed), turns every other definition into a
 * declaration (deleting a body that was never read costs nothing), and links what is left into
 * an empty module: linking reads the bodies kept, and brings along only the declarations they
 * refer to. Reading even the prototypes of a large module costs, so functions are cut from
 * chunks of {@value #CHUNK} neighbours, each made on first need by the same kind of cut from the
 * whole module and kept as bitcode: a program that reaches a few functions near each other reads
 * the whole module's prototypes once, and a function that is never called in a chunk never
 * reached is never parsed a second time.
 *
 * <p>Not thread safe (chunks are made on demand): the pipeline's lock guards it. Each cut is made
 * in a context the caller owns.
 */
final class FunctionCuts {
    /** Functions per chunk, in module order. */
    static final int CHUNK = 32;

    private final String what;
    private final Part whole;
    private final boolean definesData;
    /** Chunk index -> chunk, made on first need. */
    private final Map<Integer, Part> chunks = new HashMap<>();

    /** Bitcode, and the position of each function defined in it among all its functions (declarations included). */
    private record Part(byte[] bitcode, int functionCount, Map<String, Integer> ordinal) {}

    /**
     * @param module the globalized source module; stays the caller's, unchanged
     */
    FunctionCuts(Llvm llvm, String what, MemorySegment module) throws Throwable {
        this.what = what;
        this.whole = describe(llvm, module);
        this.definesData = ModuleShapes.definesData(llvm, module);
    }

    /** {@return whether the module defines a global variable: whether there is a data cut} */
    boolean definesData() {
        return definesData;
    }

    /** The functions the module defines, in module order. */
    List<String> definedFunctions() {
        String[] names = new String[whole.ordinal().size()];
        int i = 0;
        for (Map.Entry<String, Integer> e : whole.ordinal().entrySet().stream()
                .sorted(Map.Entry.comparingByValue()).toList()) {
            names[i++] = e.getKey();
        }
        return List.of(names);
    }

    /**
     * A module in {@code context} that defines {@code function} alone, or with {@code function}
     * null the global variables alone (the data module all cuts share); everything else it refers
     * to is declared.
     */
    MemorySegment cut(Llvm llvm, MemorySegment context, String function) throws Throwable {
        if (function == null) {
            return extract(llvm, context, what + ".data", whole, i -> false, true);
        }
        Integer at = whole.ordinal().get(function);
        if (at == null) {
            throw new IllegalArgumentException(what + " does not define '" + function + "'");
        }
        Part chunk = chunk(llvm, context, chunkOf(at));
        int keep = chunk.ordinal().get(function);
        String name = what + "." + function;
        return extract(llvm, context, name, chunk, i -> i == keep, false);
    }

    /** The chunk holding the defined function at {@code ordinal}: defined functions are numbered in module order. */
    private int chunkOf(int ordinal) {
        int defined = 0;
        for (int o : whole.ordinal().values()) {
            if (o < ordinal) {
                defined++;
            }
        }
        return defined / CHUNK;
    }

    private Part chunk(Llvm llvm, MemorySegment context, int index) throws Throwable {
        Part chunk = chunks.get(index);
        if (chunk == null) {
            java.util.Set<Integer> members = new java.util.HashSet<>();
            int defined = 0;
            for (int o : whole.ordinal().values().stream().sorted().toList()) {
                if (defined / CHUNK == index) {
                    members.add(o);
                }
                defined++;
            }
            MemorySegment module = extract(llvm, context, what + ".chunk" + index, whole, members::contains, false);
            try {
                chunk = describe(llvm, module);
            } finally {
                llvm.dispose(module);
            }
            chunks.put(index, chunk);
        }
        return chunk;
    }

    private static Part describe(Llvm llvm, MemorySegment module) throws Throwable {
        List<MemorySegment> handles = llvm.functionHandles(module);
        Map<String, Integer> ordinal = new HashMap<>();
        for (int i = 0; i < handles.size(); i++) {
            if (!llvm.isDeclaration(handles.get(i))) {
                ordinal.put(llvm.name(handles.get(i)), i);
            }
        }
        return new Part(llvm.bitcode(module), handles.size(), Map.copyOf(ordinal));
    }

    /**
     * Reads {@code part} back lazily and keeps defined only the functions at the positions
     * {@code keep} accepts (and with {@code keepVariables} the global variables), linked into a
     * new module of {@code context}.
     */
    private static MemorySegment extract(Llvm llvm, MemorySegment context, String name, Part part, IntPredicate keep,
                                         boolean keepVariables) throws Throwable {
        MemorySegment lazy = llvm.parseLazily(context, name, part.bitcode());
        try {
            List<MemorySegment> functions = llvm.functionHandles(lazy);
            if (functions.size() != part.functionCount()) {
                throw new JitLoadException(name + ": the module read back has " + functions.size() + " functions, not "
                        + part.functionCount());
            }
            for (int i = 0; i < functions.size(); i++) {
                MemorySegment f = functions.get(i);
                if (!keep.test(i) && !llvm.isDeclaration(f)) {
                    llvm.linkage(f, Llvm.AVAILABLE_EXTERNALLY);
                }
            }
            // Fail closed: each position kept must name the function it had, or the cut would compile another one.
            for (Map.Entry<String, Integer> e : part.ordinal().entrySet()) {
                if (keep.test(e.getValue()) && !llvm.name(functions.get(e.getValue())).equals(e.getKey())) {
                    throw new JitLoadException(name + ": function " + e.getValue() + " read back is '"
                            + llvm.name(functions.get(e.getValue())) + "', not '" + e.getKey() + "'");
                }
            }
            if (!keepVariables) {
                for (MemorySegment g : llvm.variableHandles(lazy)) {
                    if (!llvm.isDeclaration(g)) {
                        llvm.linkage(g, Llvm.AVAILABLE_EXTERNALLY);
                    }
                }
            }
            // Deletes the bodies and initializers marked above without reading them, and touches nothing else.
            llvm.compiler.transform(name, lazy, "elim-avail-extern");
        } catch (Throwable t) {
            llvm.dispose(lazy);
            throw t;
        }
        MemorySegment cut = llvm.newModule(context, name);
        try {
            llvm.link(name, cut, lazy);
        } catch (Throwable t) {
            llvm.dispose(cut);
            throw t;
        }
        return cut;
    }
}
