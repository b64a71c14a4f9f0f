package dev.safepointkit.compile;

import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.host.LlvmUnavailableException;
import java.lang.foreign.AddressLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * The part of the LLVM-C API the pipeline needs beyond {@link LlvmCompiler}'s parse-and-emit:
 * bitcode in and out, cloning, linking, and walking and relinking a module's globals. Bound
 * through {@link LlvmCompiler#function} from the library the compiler opened, never a second copy.
 *
 * <p>Handles are {@code LLVM*Ref}s as {@link MemorySegment}s of size zero; a module belongs to
 * its context, and a context, with everything in it, to one thread at a time (the pipeline's
 * lock). Stateless otherwise: any thread may call it on handles it owns.
 */
final class Llvm {
    // LLVMLinkage, from llvm-c/Core.h.
    static final int EXTERNAL = 0;
    static final int AVAILABLE_EXTERNALLY = 1;
    static final int LINK_ONCE_ANY = 2;
    static final int LINK_ONCE_ODR = 3;
    static final int WEAK_ANY = 5;
    static final int WEAK_ODR = 6;
    static final int APPENDING = 7;
    static final int INTERNAL = 8;
    static final int PRIVATE = 9;
    static final int EXTERNAL_WEAK = 12;
    static final int COMMON = 14;

    private static final AddressLayout ADDR = ValueLayout.ADDRESS;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;

    final LlvmCompiler compiler;
    private final MethodHandle contextCreate;
    private final MethodHandle contextDispose;
    private final MethodHandle bufferFromRange;
    private final MethodHandle parseIr;
    private final MethodHandle parseLazily;
    private final MethodHandle createModule;
    private final MethodHandle writeBitcode;
    private final MethodHandle bufferStart;
    private final MethodHandle bufferSize;
    private final MethodHandle disposeBuffer;
    private final MethodHandle cloneModule;
    private final MethodHandle linkModules;
    private final MethodHandle disposeModule;
    private final MethodHandle firstFunction;
    private final MethodHandle nextFunction;
    private final MethodHandle firstGlobal;
    private final MethodHandle nextGlobal;
    private final MethodHandle firstAlias;
    private final MethodHandle firstIFunc;
    private final MethodHandle isDeclaration;
    private final MethodHandle getName;
    private final MethodHandle setName;
    private final MethodHandle getLinkage;
    private final MethodHandle setLinkage;
    private final MethodHandle setComdat;
    private final MethodHandle getGc;
    private final MethodHandle getTarget;
    private final MethodHandle setTarget;
    private final MethodHandle getDataLayout;
    private final MethodHandle setDataLayout;
    private final MethodHandle namedFunction;
    private final MethodHandle valueType;
    private final MethodHandle returnType;
    private final MethodHandle countParamTypes;
    private final MethodHandle paramTypes;
    private final MethodHandle isVarArg;
    private final MethodHandle typeKind;
    private final MethodHandle intWidth;
    private final MethodHandle printType;
    private final MethodHandle disposeMessage;

    /** Target machines by triple and code generation options, made on first need; guarded like the handles. */
    private final java.util.Map<String, LlvmCompiler.Machine> machines = new java.util.HashMap<>();

    Llvm(LlvmCompiler compiler) throws LlvmUnavailableException {
        this.compiler = compiler;
        contextCreate = compiler.function("LLVMContextCreate", FunctionDescriptor.of(ADDR));
        contextDispose = compiler.function("LLVMContextDispose", FunctionDescriptor.ofVoid(ADDR));
        bufferFromRange = compiler.function("LLVMCreateMemoryBufferWithMemoryRangeCopy", FunctionDescriptor.of(ADDR, ADDR, LONG, ADDR));
        parseIr = compiler.function("LLVMParseIRInContext", FunctionDescriptor.of(INT, ADDR, ADDR, ADDR, ADDR));
        parseLazily = compiler.function("LLVMGetBitcodeModuleInContext2", FunctionDescriptor.of(INT, ADDR, ADDR, ADDR));
        createModule = compiler.function("LLVMModuleCreateWithNameInContext", FunctionDescriptor.of(ADDR, ADDR, ADDR));
        writeBitcode = compiler.function("LLVMWriteBitcodeToMemoryBuffer", FunctionDescriptor.of(ADDR, ADDR));
        bufferStart = compiler.function("LLVMGetBufferStart", FunctionDescriptor.of(ADDR, ADDR));
        bufferSize = compiler.function("LLVMGetBufferSize", FunctionDescriptor.of(LONG, ADDR));
        disposeBuffer = compiler.function("LLVMDisposeMemoryBuffer", FunctionDescriptor.ofVoid(ADDR));
        cloneModule = compiler.function("LLVMCloneModule", FunctionDescriptor.of(ADDR, ADDR));
        linkModules = compiler.function("LLVMLinkModules2", FunctionDescriptor.of(INT, ADDR, ADDR));
        disposeModule = compiler.function("LLVMDisposeModule", FunctionDescriptor.ofVoid(ADDR));
        firstFunction = compiler.function("LLVMGetFirstFunction", FunctionDescriptor.of(ADDR, ADDR));
        nextFunction = compiler.function("LLVMGetNextFunction", FunctionDescriptor.of(ADDR, ADDR));
        firstGlobal = compiler.function("LLVMGetFirstGlobal", FunctionDescriptor.of(ADDR, ADDR));
        nextGlobal = compiler.function("LLVMGetNextGlobal", FunctionDescriptor.of(ADDR, ADDR));
        firstAlias = compiler.function("LLVMGetFirstGlobalAlias", FunctionDescriptor.of(ADDR, ADDR));
        firstIFunc = compiler.function("LLVMGetFirstGlobalIFunc", FunctionDescriptor.of(ADDR, ADDR));
        isDeclaration = compiler.function("LLVMIsDeclaration", FunctionDescriptor.of(INT, ADDR));
        getName = compiler.function("LLVMGetValueName2", FunctionDescriptor.of(ADDR, ADDR, ADDR));
        setName = compiler.function("LLVMSetValueName2", FunctionDescriptor.ofVoid(ADDR, ADDR, LONG));
        getLinkage = compiler.function("LLVMGetLinkage", FunctionDescriptor.of(INT, ADDR));
        setLinkage = compiler.function("LLVMSetLinkage", FunctionDescriptor.ofVoid(ADDR, INT));
        setComdat = compiler.function("LLVMSetComdat", FunctionDescriptor.ofVoid(ADDR, ADDR));
        getGc = compiler.function("LLVMGetGC", FunctionDescriptor.of(ADDR, ADDR));
        getTarget = compiler.function("LLVMGetTarget", FunctionDescriptor.of(ADDR, ADDR));
        setTarget = compiler.function("LLVMSetTarget", FunctionDescriptor.ofVoid(ADDR, ADDR));
        getDataLayout = compiler.function("LLVMGetDataLayoutStr", FunctionDescriptor.of(ADDR, ADDR));
        setDataLayout = compiler.function("LLVMSetDataLayout", FunctionDescriptor.ofVoid(ADDR, ADDR));
        namedFunction = compiler.function("LLVMGetNamedFunction", FunctionDescriptor.of(ADDR, ADDR, ADDR));
        valueType = compiler.function("LLVMGlobalGetValueType", FunctionDescriptor.of(ADDR, ADDR));
        returnType = compiler.function("LLVMGetReturnType", FunctionDescriptor.of(ADDR, ADDR));
        countParamTypes = compiler.function("LLVMCountParamTypes", FunctionDescriptor.of(INT, ADDR));
        paramTypes = compiler.function("LLVMGetParamTypes", FunctionDescriptor.ofVoid(ADDR, ADDR));
        isVarArg = compiler.function("LLVMIsFunctionVarArg", FunctionDescriptor.of(INT, ADDR));
        typeKind = compiler.function("LLVMGetTypeKind", FunctionDescriptor.of(INT, ADDR));
        intWidth = compiler.function("LLVMGetIntTypeWidth", FunctionDescriptor.of(INT, ADDR));
        printType = compiler.function("LLVMPrintTypeToString", FunctionDescriptor.of(ADDR, ADDR));
        disposeMessage = compiler.function("LLVMDisposeMessage", FunctionDescriptor.ofVoid(ADDR));
    }

    /**
     * The type of the function {@code name} defines or declares in {@code module}, as IR spells
     * its parameter and return types ({@code i64}, {@code ptr}, {@code double}, ...), or null when
     * the module has no function of that name.
     */
    CompilePipeline.Signature signature(MemorySegment module, String name) throws Throwable {
        MemorySegment f = namedFunction(module, name);
        if (f.address() == 0) {
            return null;
        }
        MemorySegment type = (MemorySegment) valueType.invokeExact(f);
        int n = (int) countParamTypes.invokeExact(type);
        List<String> parameters = new ArrayList<>(n);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDR, Math.max(1, n));
            paramTypes.invokeExact(type, out);
            for (int i = 0; i < n; i++) {
                parameters.add(typeName(out.getAtIndex(ADDR, i)));
            }
        }
        return new CompilePipeline.Signature(name, typeName((MemorySegment) returnType.invokeExact(type)), parameters,
                (int) isVarArg.invokeExact(type) != 0, (int) isDeclaration.invokeExact(f) == 0);
    }

    /**
     * The type of the function {@code name} in {@code module} as IR prints it whole (aggregates and
     * vectors spelled out, {@code ...} for varargs), or null when the module has no such function.
     */
    String functionTypeText(MemorySegment module, String name) throws Throwable {
        MemorySegment f = namedFunction(module, name);
        if (f.address() == 0) {
            return null;
        }
        MemorySegment text = (MemorySegment) printType.invokeExact((MemorySegment) valueType.invokeExact(f));
        try {
            return string(text);
        } finally {
            disposeMessage.invokeExact(text);
        }
    }

    /** The function {@code name} of {@code module}; address 0 when there is none. */
    private MemorySegment namedFunction(MemorySegment module, String name) throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            return (MemorySegment) namedFunction.invokeExact(module, arena.allocateFrom(name));
        }
    }

    /** A type as IR writes the simple ones; {@code other} for aggregates, vectors and the rest. */
    private String typeName(MemorySegment type) throws Throwable {
        int kind = (int) typeKind.invokeExact(type);
        return switch (kind) {
            case 0 -> "void";
            case 1 -> "half";
            case 2 -> "float";
            case 3 -> "double";
            case 8 -> "i" + (int) intWidth.invokeExact(type);
            case 12 -> "ptr";
            default -> "other";
        };
    }

    /** The kept target machine for {@code triple} and {@code options}' level and relocation model. */
    LlvmCompiler.Machine machine(String triple, LlvmCompiler.Options options) throws JitLoadException {
        String key = triple + " " + options.optLevel() + " " + options.pic();
        LlvmCompiler.Machine m = machines.get(key);
        if (m == null) {
            m = compiler.machine(triple, options);
            machines.put(key, m);
        }
        return m;
    }

    /** Frees the kept target machines; later compiles make new ones. */
    void closeMachines() {
        machines.values().forEach(LlvmCompiler.Machine::close);
        machines.clear();
    }

    /** A global value of a module: its handle, name, linkage and whether it has a body or initializer. */
    record Global(MemorySegment handle, String name, int linkage, boolean declaration, boolean function) {
        boolean local() {
            return linkage == INTERNAL || linkage == PRIVATE;
        }
    }

    MemorySegment newContext() throws Throwable {
        return (MemorySegment) contextCreate.invokeExact();
    }

    void disposeContext(MemorySegment context) throws Throwable {
        contextDispose.invokeExact(context);
    }

    /** Parses IR text or bitcode ({@code LLVMParseIRInContext} tells them apart by the magic). */
    MemorySegment parse(MemorySegment context, String name, byte[] source) throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bytes = arena.allocate(Math.max(1, source.length));
            MemorySegment.copy(source, 0, bytes, ValueLayout.JAVA_BYTE, 0, source.length);
            MemorySegment buffer = (MemorySegment) bufferFromRange.invokeExact(bytes, (long) source.length, arena.allocateFrom(name));
            MemorySegment out = arena.allocate(ADDR);
            MemorySegment message = arena.allocate(ADDR);
            // Takes the buffer, whatever the outcome.
            if ((int) parseIr.invokeExact(context, buffer, out, message) != 0) {
                throw new JitLoadException(name + ": LLVM could not parse it: " + compiler.takeMessage(message));
            }
            return out.get(ADDR, 0);
        }
    }

    /**
     * Reads the module-level records of {@code bitcode} (globals, types, prototypes) and leaves
     * each function body in the bitcode until something materializes it: linking the function into
     * another module does; turning it into a declaration (deleting its body) does not. The module
     * owns a copy of the bytes.
     */
    MemorySegment parseLazily(MemorySegment context, String name, byte[] bitcode) throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bytes = arena.allocate(Math.max(1, bitcode.length));
            MemorySegment.copy(bitcode, 0, bytes, ValueLayout.JAVA_BYTE, 0, bitcode.length);
            MemorySegment buffer = (MemorySegment) bufferFromRange.invokeExact(bytes, (long) bitcode.length, arena.allocateFrom(name));
            MemorySegment out = arena.allocate(ADDR);
            // On success the module owns the buffer; the bitcode is the pipeline's own, written by LLVMWriteBitcodeToMemoryBuffer.
            if ((int) parseLazily.invokeExact(context, buffer, out) != 0) {
                disposeBuffer.invokeExact(buffer);
                throw new JitLoadException(name + ": LLVM could not read the module's own bitcode back");
            }
            return out.get(ADDR, 0);
        }
    }

    /** A new empty module in {@code context}. */
    MemorySegment newModule(MemorySegment context, String name) throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            return (MemorySegment) createModule.invokeExact(arena.allocateFrom(name), context);
        }
    }

    /** The functions of {@code module} in module order, declarations included: handles only, no names read. */
    List<MemorySegment> functionHandles(MemorySegment module) throws Throwable {
        List<MemorySegment> all = new ArrayList<>();
        for (MemorySegment f = (MemorySegment) firstFunction.invokeExact(module); f.address() != 0;
                f = (MemorySegment) nextFunction.invokeExact(f)) {
            all.add(f);
        }
        return all;
    }

    /** The global variables of {@code module} in module order: handles only. */
    List<MemorySegment> variableHandles(MemorySegment module) throws Throwable {
        List<MemorySegment> all = new ArrayList<>();
        for (MemorySegment g = (MemorySegment) firstGlobal.invokeExact(module); g.address() != 0;
                g = (MemorySegment) nextGlobal.invokeExact(g)) {
            all.add(g);
        }
        return all;
    }

    /** Whether the global has no body or initializer; a function whose body is not materialized yet has one. */
    boolean isDeclaration(MemorySegment global) throws Throwable {
        return (int) isDeclaration.invokeExact(global) != 0;
    }

    byte[] bitcode(MemorySegment module) throws Throwable {
        MemorySegment buffer = (MemorySegment) writeBitcode.invokeExact(module);
        try {
            long size = (long) bufferSize.invokeExact(buffer);
            // The buffer holds exactly `size` bytes.
            return ((MemorySegment) bufferStart.invokeExact(buffer)).reinterpret(size).toArray(ValueLayout.JAVA_BYTE);
        } finally {
            disposeBuffer.invokeExact(buffer);
        }
    }

    MemorySegment cloneOf(MemorySegment module) throws Throwable {
        return (MemorySegment) cloneModule.invokeExact(module);
    }

    /** Links {@code source} into {@code destination}; {@code source} is gone afterwards, whatever the outcome. */
    void link(String what, MemorySegment destination, MemorySegment source) throws Throwable {
        if ((int) linkModules.invokeExact(destination, source) != 0) {
            throw new JitLoadException(what + ": LLVM could not link the modules (see its diagnostics on standard error)");
        }
    }

    void dispose(MemorySegment module) throws Throwable {
        disposeModule.invokeExact(module);
    }

    /** Every function, then every global variable, of {@code module}, in module order. */
    List<Global> globals(MemorySegment module) throws Throwable {
        List<Global> all = new ArrayList<>();
        for (MemorySegment f = (MemorySegment) firstFunction.invokeExact(module); f.address() != 0;
                f = (MemorySegment) nextFunction.invokeExact(f)) {
            all.add(describe(f, true));
        }
        for (MemorySegment g = (MemorySegment) firstGlobal.invokeExact(module); g.address() != 0;
                g = (MemorySegment) nextGlobal.invokeExact(g)) {
            all.add(describe(g, false));
        }
        return all;
    }

    /** Whether the module has aliases or ifuncs, which the pipeline does not split or relink. */
    boolean hasAliasesOrIFuncs(MemorySegment module) throws Throwable {
        return ((MemorySegment) firstAlias.invokeExact(module)).address() != 0
                || ((MemorySegment) firstIFunc.invokeExact(module)).address() != 0;
    }

    private Global describe(MemorySegment value, boolean function) throws Throwable {
        return new Global(value, name(value), (int) getLinkage.invokeExact(value), (int) isDeclaration.invokeExact(value) != 0,
                function);
    }

    String name(MemorySegment value) throws Throwable {
        // Walks read every name of a module, often: one out parameter per thread, not an arena per name.
        MemorySegment length = NAME_LENGTH.get();
        MemorySegment text = (MemorySegment) getName.invokeExact(value, length);
        long n = length.get(LONG, 0);
        // LLVM returns the name's bytes and their count; the name may hold any byte.
        return n == 0 ? "" : new String(text.reinterpret(n).toArray(ValueLayout.JAVA_BYTE), java.nio.charset.StandardCharsets.UTF_8);
    }

    /** The length out parameter of {@code LLVMGetValueName2}, one per thread, owned by the automatic arena. */
    private static final ThreadLocal<MemorySegment> NAME_LENGTH = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(LONG));

    void rename(MemorySegment value, String name) throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            byte[] bytes = name.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            setName.invokeExact(value, arena.allocateFrom(name), (long) bytes.length);
        }
    }

    int linkage(MemorySegment value) throws Throwable {
        return (int) getLinkage.invokeExact(value);
    }

    void linkage(MemorySegment value, int linkage) throws Throwable {
        setLinkage.invokeExact(value, linkage);
    }

    void dropComdat(MemorySegment value) throws Throwable {
        setComdat.invokeExact(value, MemorySegment.NULL);
    }

    /** Whether the function names a garbage collector ({@code gc "..."}). */
    boolean hasGc(MemorySegment function) throws Throwable {
        return ((MemorySegment) getGc.invokeExact(function)).address() != 0;
    }

    String triple(MemorySegment module) throws Throwable {
        return string((MemorySegment) getTarget.invokeExact(module));
    }

    void triple(MemorySegment module, String triple) throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            setTarget.invokeExact(module, arena.allocateFrom(triple));
        }
    }

    /** Gives {@code module} the triple and data layout of {@code like}, so linking them raises no warning. */
    void sameTarget(MemorySegment module, MemorySegment like) throws Throwable {
        triple(module, triple(like));
        String layout = string((MemorySegment) getDataLayout.invokeExact(like));
        try (Arena arena = Arena.ofConfined()) {
            setDataLayout.invokeExact(module, arena.allocateFrom(layout));
        }
    }

    private static String string(MemorySegment cString) {
        // A NUL-terminated C string of unknown length: getString stops at the NUL.
        return cString.address() == 0 ? "" : cString.reinterpret(Long.MAX_VALUE).getString(0);
    }
}
