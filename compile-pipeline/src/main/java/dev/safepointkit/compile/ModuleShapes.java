package dev.safepointkit.compile;

import dev.safepointkit.host.JitLoadException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The rewrites that make a module splittable and linkable more than once: local symbols made
 * global under names unique to their source, one definition for every linkonce and weak symbol,
 * the runtime's inline copy ({@link FunctionCuts} cuts one function, or the data, out of a module). Each
 * refuses, naming the symbol, what it cannot keep equal to the unsplit module. Stateless; the
 * module's context belongs to the calling thread.
 */
final class ModuleShapes {
    private ModuleShapes() {}

    /**
     * Makes every definition of {@code module} global, with one definition: local symbols are
     * renamed {@code NAME.spk.TAG} ({@code TAG} taken from the source, so two sources never clash
     * and the same source always gets the same names), linkonce and weak ones become plain
     * external definitions, comdats are dropped. After it, any cut of the module links against any
     * other cut by name, as one program.
     */
    static void globalize(Llvm llvm, String what, MemorySegment module, String tag) throws Throwable {
        if (llvm.hasAliasesOrIFuncs(module)) {
            throw new JitLoadException(what + ": holds a global alias or ifunc, which the pipeline does not split or relink");
        }
        int anonymous = 0;
        // Handles first, names only where needed: a large module has many globals and few local ones.
        List<MemorySegment> globals = new ArrayList<>(llvm.functionHandles(module));
        globals.addAll(llvm.variableHandles(module));
        for (MemorySegment g : globals) {
            if (llvm.isDeclaration(g)) {
                continue;
            }
            int linkage = llvm.linkage(g);
            switch (linkage) {
                case Llvm.EXTERNAL -> { }
                case Llvm.INTERNAL, Llvm.PRIVATE -> {
                    String name = llvm.name(g);
                    String base = name.isEmpty() ? "anon" + anonymous++ : name;
                    llvm.rename(g, base + ".spk." + tag);
                    llvm.linkage(g, Llvm.EXTERNAL);
                }
                case Llvm.LINK_ONCE_ANY, Llvm.LINK_ONCE_ODR, Llvm.WEAK_ANY, Llvm.WEAK_ODR -> llvm.linkage(g, Llvm.EXTERNAL);
                default -> throw new JitLoadException(what + ": '" + llvm.name(g) + "' has linkage " + linkageName(linkage)
                        + ", which the pipeline does not split or relink");
            }
            llvm.dropComdat(g);
        }
    }

    /** Names of the functions {@code module} defines, in module order. */
    static List<String> definedFunctions(Llvm llvm, MemorySegment module) throws Throwable {
        List<String> names = new ArrayList<>();
        for (Llvm.Global g : llvm.globals(module)) {
            if (g.function() && !g.declaration()) {
                names.add(g.name());
            }
        }
        return names;
    }

    /** Whether {@code module} defines a global variable. */
    static boolean definesData(Llvm llvm, MemorySegment module) throws Throwable {
        for (MemorySegment g : llvm.variableHandles(module)) {
            if (!llvm.isDeclaration(g)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Marks every definition of {@code module} available_externally: its bodies may be inlined
     * where it is linked in, and calls that are not inlined go to the one compiled copy.
     */
    static void offerForInlining(Llvm llvm, MemorySegment module) throws Throwable {
        for (Llvm.Global g : llvm.globals(module)) {
            if (!g.declaration()) {
                llvm.linkage(g.handle(), Llvm.AVAILABLE_EXTERNALLY);
                llvm.dropComdat(g.handle());
            }
        }
    }

    /**
     * Whether an optimized module can be offered to later compiles as {@code function}'s body:
     * it defines that one function and nothing else (a local constant the optimizer made, or any
     * variable, would be duplicated by each module that inlines it).
     */
    static boolean inlinableAlone(Llvm llvm, MemorySegment module, String function) throws Throwable {
        for (Llvm.Global g : llvm.globals(module)) {
            if (!g.declaration() && !(g.function() && g.name().equals(function))) {
                return false;
            }
        }
        return true;
    }

    /** Names of the functions {@code module} declares without defining. */
    static List<String> declaredFunctions(Llvm llvm, MemorySegment module) throws Throwable {
        List<String> names = new ArrayList<>();
        for (Llvm.Global g : llvm.globals(module)) {
            if (g.function() && g.declaration() && !g.name().startsWith("llvm.")) {
                names.add(g.name());
            }
        }
        return names;
    }

    /** Whether any function of {@code module} names a garbage collector. */
    static boolean usesGc(Llvm llvm, MemorySegment module) throws Throwable {
        for (Llvm.Global g : llvm.globals(module)) {
            if (g.function() && !g.declaration() && llvm.hasGc(g.handle())) {
                return true;
            }
        }
        return false;
    }

    private static String linkageName(int linkage) {
        return switch (linkage) {
            case Llvm.APPENDING -> "appending (llvm.global_ctors and the like)";
            case Llvm.EXTERNAL_WEAK -> "extern_weak";
            case Llvm.COMMON -> "common";
            default -> "#" + linkage;
        };
    }
}
