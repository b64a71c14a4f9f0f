package dev.safepointkit.compile;

import dev.safepointkit.host.JitLoadException;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Cuts one function (or the data) at a time out of a large globalized module without copying
 * the module: the module is written to bitcode once, and each cut reads that bitcode back lazily
 * (module-level records only; no function body is parsed), turns every other definition into a
 * declaration (deleting a body that was never read costs nothing), and links what is left into
 * an empty module. Linking reads the one body kept, and brings along only the declarations it
 * refers to. So a cut costs a walk of the module's prototypes, not a copy of its bodies, and a
 * function that is never called is never parsed a second time.
 *
 * <p>Immutable once made: any thread may cut, into a context it owns (LLVM's rule).
 */
final class FunctionCuts {
    private final String what;
    private final byte[] bitcode;
    /** Every function of the module, declarations included, in module order: a cut finds its function by position. */
    private final List<String> allFunctions;
    private final Map<String, Integer> ordinal = new HashMap<>();
    private final boolean definesData;

    /**
     * @param module the globalized source module; stays the caller's, unchanged
     */
    FunctionCuts(Llvm llvm, String what, MemorySegment module) throws Throwable {
        this.what = what;
        List<MemorySegment> handles = llvm.functionHandles(module);
        String[] names = new String[handles.size()];
        for (int i = 0; i < names.length; i++) {
            names[i] = llvm.name(handles.get(i));
            if (!llvm.isDeclaration(handles.get(i))) {
                ordinal.put(names[i], i);
            }
        }
        this.allFunctions = List.of(names);
        this.definesData = ModuleShapes.definesData(llvm, module);
        this.bitcode = llvm.bitcode(module);
    }

    /**
     * A module in {@code context} that defines {@code function} alone, or with {@code function}
     * null the global variables alone (the data module all cuts share); everything else it refers
     * to is declared.
     */
    MemorySegment cut(Llvm llvm, MemorySegment context, String function) throws Throwable {
        String name = what + "." + (function == null ? "data" : function);
        int keep = -1;
        if (function != null) {
            Integer at = ordinal.get(function);
            if (at == null) {
                throw new IllegalArgumentException(what + " does not define '" + function + "'");
            }
            keep = at;
        }
        MemorySegment lazy = llvm.parseLazily(context, name, bitcode);
        try {
            List<MemorySegment> functions = llvm.functionHandles(lazy);
            if (functions.size() != allFunctions.size()) {
                throw new JitLoadException(name + ": the module read back has " + functions.size() + " functions, not "
                        + allFunctions.size());
            }
            for (int i = 0; i < functions.size(); i++) {
                MemorySegment f = functions.get(i);
                if (i == keep) {
                    // Fail closed: the position must name the function, or the cut would compile another one.
                    if (!llvm.name(f).equals(function)) {
                        throw new JitLoadException(name + ": function " + i + " read back is '" + llvm.name(f) + "', not '"
                                + function + "'");
                    }
                } else if (!llvm.isDeclaration(f)) {
                    llvm.linkage(f, Llvm.AVAILABLE_EXTERNALLY);
                }
            }
            if (function != null) {
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

    /** {@return whether the module defines a global variable: whether there is a data cut} */
    boolean definesData() {
        return definesData;
    }

    /** The functions the module defines, in module order. */
    List<String> definedFunctions() {
        return allFunctions.stream().filter(ordinal::containsKey).toList();
    }
}
