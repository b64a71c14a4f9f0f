package dev.safepointkit.host;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * Compiles LLVM IR text to an x86-64 ELF object in memory through the LLVM-C API of libLLVM 19,
 * called with FFM: parse, verify, optionally run a new-pass-manager pipeline (for example
 * {@code rewrite-statepoints-for-gc}), emit an object. The result loads with {@link JitHost#load}.
 *
 * <p>libLLVM is optional at run time: without it the host still loads precompiled objects, and
 * {@link #open} lists every place it looked and says how to install it. Thread safe: compilations
 * are serialized; each uses a fresh LLVM context.
 */
public final class LlvmCompiler {
    /** The environment variable that gives libLLVM's path to {@link #open()}. */
    public static final String LIBRARY_ENVIRONMENT = LlvmLibrary.ENVIRONMENT;

    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final java.lang.foreign.AddressLayout ADDR = ValueLayout.ADDRESS;
    private static final int LLVM_RETURN_STATUS_ACTION = 2;
    private static final int LLVM_OBJECT_FILE = 1;
    private static final int LLVM_CODE_MODEL_SMALL = 3;

    /**
     * How to compile: optimization level 0 to 3, relocation model, and passes to run first.
     *
     * @param optLevel the code generator's optimization level, 0 to 3 ({@code llc -O0} to {@code -O3})
     * @param pic true for position-independent code ({@code -relocation-model=pic}), false for static
     * @param passes a new-pass-manager pipeline run on the module before code generation, e.g.
     *     {@code rewrite-statepoints-for-gc}; null or blank for none
     */
    public record Options(int optLevel, boolean pic, String passes) {
        /** {@code -O2}, position-independent, no passes before code generation. */
        public static final Options DEFAULT = new Options(2, true, null);

        /**
         * Checks the level; the pipeline is only checked by LLVM, when a compile runs it.
         *
         * @param optLevel 0 to 3
         * @param pic true for position-independent code
         * @param passes a pipeline, or null or blank for none
         * @throws IllegalArgumentException if {@code optLevel} is not 0 to 3
         */
        public Options {
            if (optLevel < 0 || optLevel > 3) {
                throw new IllegalArgumentException("optimization level " + optLevel + " is not 0 to 3");
            }
        }

        /**
         * The same options with another pipeline.
         *
         * @param pipeline passes in new pass manager syntax, run before code generation; null or
         *     blank for none
         * @return options with the same level and relocation model, and {@code pipeline}
         */
        public Options withPasses(String pipeline) {
            return new Options(optLevel, pic, pipeline);
        }
    }

    private final LlvmLibrary library;
    private final MethodHandle contextCreate;
    private final MethodHandle contextDispose;
    private final MethodHandle bufferFromRange;
    private final MethodHandle parseIr;
    private final MethodHandle verifyModule;
    private final MethodHandle getTarget;
    private final MethodHandle setTarget;
    private final MethodHandle targetFromTriple;
    private final MethodHandle createTargetMachine;
    private final MethodHandle disposeTargetMachine;
    private final MethodHandle createDataLayout;
    private final MethodHandle setDataLayout;
    private final MethodHandle disposeDataLayout;
    private final MethodHandle createPassOptions;
    private final MethodHandle disposePassOptions;
    private final MethodHandle runPasses;
    private final MethodHandle errorMessage;
    private final MethodHandle disposeErrorMessage;
    private final MethodHandle emitToBuffer;
    private final MethodHandle bufferStart;
    private final MethodHandle bufferSize;
    private final MethodHandle disposeBuffer;
    private final MethodHandle disposeModule;
    private final MethodHandle disposeMessage;

    private LlvmCompiler(LlvmLibrary library) throws Throwable {
        this.library = library;
        SymbolLookup llvm = library.lookup();
        Linker linker = Linker.nativeLinker();
        java.util.function.BiFunction<String, FunctionDescriptor, MethodHandle> h =
                (name, fd) -> linker.downcallHandle(llvm.findOrThrow(name), fd);
        contextCreate = h.apply("LLVMContextCreate", FunctionDescriptor.of(ADDR));
        contextDispose = h.apply("LLVMContextDispose", FunctionDescriptor.ofVoid(ADDR));
        bufferFromRange = h.apply("LLVMCreateMemoryBufferWithMemoryRangeCopy",
                FunctionDescriptor.of(ADDR, ADDR, ValueLayout.JAVA_LONG, ADDR));
        parseIr = h.apply("LLVMParseIRInContext", FunctionDescriptor.of(INT, ADDR, ADDR, ADDR, ADDR));
        verifyModule = h.apply("LLVMVerifyModule", FunctionDescriptor.of(INT, ADDR, INT, ADDR));
        getTarget = h.apply("LLVMGetTarget", FunctionDescriptor.of(ADDR, ADDR));
        setTarget = h.apply("LLVMSetTarget", FunctionDescriptor.ofVoid(ADDR, ADDR));
        targetFromTriple = h.apply("LLVMGetTargetFromTriple", FunctionDescriptor.of(INT, ADDR, ADDR, ADDR));
        createTargetMachine = h.apply("LLVMCreateTargetMachine",
                FunctionDescriptor.of(ADDR, ADDR, ADDR, ADDR, ADDR, INT, INT, INT));
        disposeTargetMachine = h.apply("LLVMDisposeTargetMachine", FunctionDescriptor.ofVoid(ADDR));
        createDataLayout = h.apply("LLVMCreateTargetDataLayout", FunctionDescriptor.of(ADDR, ADDR));
        setDataLayout = h.apply("LLVMSetModuleDataLayout", FunctionDescriptor.ofVoid(ADDR, ADDR));
        disposeDataLayout = h.apply("LLVMDisposeTargetData", FunctionDescriptor.ofVoid(ADDR));
        createPassOptions = h.apply("LLVMCreatePassBuilderOptions", FunctionDescriptor.of(ADDR));
        disposePassOptions = h.apply("LLVMDisposePassBuilderOptions", FunctionDescriptor.ofVoid(ADDR));
        runPasses = h.apply("LLVMRunPasses", FunctionDescriptor.of(ADDR, ADDR, ADDR, ADDR, ADDR));
        errorMessage = h.apply("LLVMGetErrorMessage", FunctionDescriptor.of(ADDR, ADDR));
        disposeErrorMessage = h.apply("LLVMDisposeErrorMessage", FunctionDescriptor.ofVoid(ADDR));
        emitToBuffer = h.apply("LLVMTargetMachineEmitToMemoryBuffer", FunctionDescriptor.of(INT, ADDR, ADDR, INT, ADDR, ADDR));
        bufferStart = h.apply("LLVMGetBufferStart", FunctionDescriptor.of(ADDR, ADDR));
        bufferSize = h.apply("LLVMGetBufferSize", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ADDR));
        disposeBuffer = h.apply("LLVMDisposeMemoryBuffer", FunctionDescriptor.ofVoid(ADDR));
        disposeModule = h.apply("LLVMDisposeModule", FunctionDescriptor.ofVoid(ADDR));
        disposeMessage = h.apply("LLVMDisposeMessage", FunctionDescriptor.ofVoid(ADDR));
        for (String init : new String[] {"LLVMInitializeX86TargetInfo", "LLVMInitializeX86Target",
            "LLVMInitializeX86TargetMC", "LLVMInitializeX86AsmPrinter"}) {
            linker.downcallHandle(llvm.findOrThrow(init), FunctionDescriptor.ofVoid()).invokeExact();
        }
    }

    /**
     * Finds and opens libLLVM 19: the path in {@value #LIBRARY_ENVIRONMENT} when set (and then only
     * there); else the directory {@code llvm-config-19 --libdir} names; the dynamic loader's
     * {@code libLLVM.so.19.1} (Debian's {@code libllvm19}) and {@code libLLVM-19.so}; last
     * {@code /usr/lib/llvm-19/lib/libLLVM.so.1} ({@code llvm-19-dev}). Each candidate must report
     * version 19 through {@code LLVMGetVersion}. The library stays loaded for the life of the process.
     * Any thread; each call makes a compiler of its own.
     *
     * @return a compiler calling the first candidate that works
     * @throws LlvmUnavailableException naming every place tried and how to install the library
     */
    public static LlvmCompiler open() throws LlvmUnavailableException {
        return open(LlvmLibrary.Search.standard());
    }

    /**
     * Opens libLLVM 19 at {@code library}, and nowhere else. Any thread.
     *
     * @param library the path of the shared library, e.g. {@code /usr/lib/llvm-19/lib/libLLVM.so.1}
     * @return a compiler calling that library
     * @throws LlvmUnavailableException if it is missing, is not LLVM 19, or lacks the LLVM-C functions needed
     */
    public static LlvmCompiler open(Path library) throws LlvmUnavailableException {
        return open(LlvmLibrary.Search.standard().withExplicit(library, "given path"));
    }

    static LlvmCompiler open(LlvmLibrary.Search search) throws LlvmUnavailableException {
        LlvmLibrary library = LlvmLibrary.find(search);
        try {
            return new LlvmCompiler(library);
        } catch (Throwable e) {
            throw new LlvmUnavailableException("cannot use " + library.path() + " (LLVM " + library.version()
                    + ") as libLLVM 19: " + e, e);
        }
    }

    /** {@return the libLLVM file this compiler calls} */
    public Path library() {
        return library.path();
    }

    /** {@return libLLVM's version, {@code major.minor.patch}, with major 19} */
    public String llvmVersion() {
        return library.version();
    }

    /**
     * Compiles {@code ir} (textual LLVM IR) to an ELF object for x86-64 Linux. A module without a
     * target triple gets {@code x86_64-unknown-linux-gnu}. Any thread: compiles on one compiler
     * run one at a time.
     *
     * @param name the module's name in LLVM's messages
     * @param ir the module, as {@code llvm-as} reads it
     * @param options optimization level, relocation model and passes
     * @return the bytes of an ELF relocatable object, ready for {@link JitHost#load}
     * @throws JitLoadException with LLVM's message if the IR does not parse or verify, a pass
     *     fails, or code generation fails
     */
    public synchronized byte[] compile(String name, String ir, Options options) throws JitLoadException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment context = (MemorySegment) contextCreate.invokeExact();
            try {
                return compileIn(context, arena, name, ir, options);
            } finally {
                contextDispose.invokeExact(context);
            }
        } catch (JitLoadException e) {
            throw e;
        } catch (Throwable t) {
            throw new JitLoadException(name + ": calling libLLVM failed: " + t, t);
        }
    }

    private byte[] compileIn(MemorySegment context, Arena arena, String name, String ir, Options options) throws Throwable {
        MemorySegment text = arena.allocateFrom(ir);
        // The buffer's length excludes the NUL that allocateFrom appends.
        MemorySegment buffer = (MemorySegment) bufferFromRange.invokeExact(text, text.byteSize() - 1, arena.allocateFrom(name));
        MemorySegment moduleOut = arena.allocate(ADDR);
        MemorySegment message = arena.allocate(ADDR);
        // LLVMParseIRInContext takes ownership of the buffer, whatever the outcome.
        if ((int) parseIr.invokeExact(context, buffer, moduleOut, message) != 0) {
            throw new JitLoadException(name + ": LLVM could not parse the IR: " + takeMessage(message));
        }
        MemorySegment module = moduleOut.get(ADDR, 0);
        try {
            return emitIn(arena, name, module, options, true);
        } finally {
            disposeModule.invokeExact(module);
        }
    }

    /**
     * Verifies, optimizes and emits a module another part of the kit built with the LLVM-C API
     * (through {@link #function}): the second half of {@link #compile}, without the parse. The
     * module stays the caller's, changed by the passes; its context must not be in use on another
     * thread. Any thread: serialized with {@link #compile}.
     *
     * @param name the module's name in messages
     * @param module an {@code LLVMModuleRef} of a context the caller owns
     * @param options optimization level, relocation model and passes
     * @return the bytes of an ELF relocatable object
     * @throws JitLoadException with LLVM's message if the module does not verify, a pass fails, or
     *     code generation fails
     */
    public synchronized byte[] emit(String name, MemorySegment module, Options options) throws JitLoadException {
        return passes(name, module, options, true);
    }

    /**
     * As {@link #emit}, without code generation: verifies {@code module} and runs the passes of
     * {@code options} with this target's machine (its data layout and cost model), leaving the
     * optimized IR in the module. Any thread: serialized with {@link #compile}.
     *
     * @param name the module's name in messages
     * @param module an {@code LLVMModuleRef} of a context the caller owns
     * @param options the level and relocation model of the target machine, and the passes
     * @throws JitLoadException with LLVM's message if the module does not verify or a pass fails
     */
    public synchronized void optimize(String name, MemorySegment module, Options options) throws JitLoadException {
        passes(name, module, options, false);
    }

    private byte[] passes(String name, MemorySegment module, Options options, boolean codegen) throws JitLoadException {
        try (Arena arena = Arena.ofConfined()) {
            return emitIn(arena, name, module, options, codegen);
        } catch (JitLoadException e) {
            throw e;
        } catch (Throwable t) {
            throw new JitLoadException(name + ": calling libLLVM failed: " + t, t);
        }
    }

    /**
     * A downcall handle of a function of the libLLVM this compiler calls, so that a module built
     * on this bridge (the compile pipeline) binds the rest of the LLVM-C API it needs from the same
     * library instead of opening its own. Any thread.
     *
     * @param symbol the LLVM-C function, e.g. {@code LLVMLinkModules2}
     * @param descriptor its C signature
     * @return a handle calling it
     * @throws LlvmUnavailableException if the library does not export {@code symbol}
     */
    public MethodHandle function(String symbol, FunctionDescriptor descriptor) throws LlvmUnavailableException {
        MemorySegment address = library.lookup().find(symbol).orElseThrow(() -> new LlvmUnavailableException(
                library.path() + " (LLVM " + library.version() + ") does not export " + symbol, null));
        return Linker.nativeLinker().downcallHandle(address, descriptor);
    }

    /** The target every module without a triple gets. */
    public static final String DEFAULT_TRIPLE = "x86_64-unknown-linux-gnu";

    /**
     * The CPU and features objects are compiled for: the generic x86-64 ({@code llc}'s default),
     * never the host's, so an object runs on any x86-64 machine that shares a cache. Immutable.
     *
     * @return {@code cpu;features}, both empty for LLVM's generic x86-64
     */
    public static String targetCpuAndFeatures() {
        return CPU + ";" + FEATURES;
    }

    private static final String CPU = "";
    private static final String FEATURES = "";

    /**
     * Runs target-independent passes on {@code module}, without a target machine and without
     * verifying first: for a caller's own rewrites of IR it has verified (cutting a module apart),
     * not for optimization. Any thread: serialized with {@link #compile}.
     *
     * @param name the module's name in messages
     * @param module an {@code LLVMModuleRef} of a context the caller owns
     * @param passes a new-pass-manager pipeline, e.g. {@code elim-avail-extern}
     * @throws JitLoadException with LLVM's message if the pipeline does not parse or a pass fails
     */
    public synchronized void transform(String name, MemorySegment module, String passes) throws JitLoadException {
        try (Arena arena = Arena.ofConfined()) {
            runPipeline(arena, name, module, passes, MemorySegment.NULL);
        } catch (JitLoadException e) {
            throw e;
        } catch (Throwable t) {
            throw new JitLoadException(name + ": calling libLLVM failed: " + t, t);
        }
    }

    private void runPipeline(Arena arena, String name, MemorySegment module, String passes, MemorySegment machine) throws Throwable {
        MemorySegment passOptions = (MemorySegment) createPassOptions.invokeExact();
        MemorySegment error;
        try {
            error = (MemorySegment) runPasses.invokeExact(module, arena.allocateFrom(passes), machine, passOptions);
        } finally {
            disposePassOptions.invokeExact(passOptions);
        }
        if (error.address() != 0) {
            MemorySegment text = (MemorySegment) errorMessage.invokeExact(error);
            String why = string(text);
            disposeErrorMessage.invokeExact(text);
            throw new JitLoadException(name + ": pass pipeline '" + passes + "' failed: " + why);
        }
    }

    /** Verifies, runs the passes and, when {@code codegen}, emits the object; else returns null. */
    private byte[] emitIn(Arena arena, String name, MemorySegment module, Options options, boolean codegen) throws Throwable {
        String triple = tripleOf(arena, module);
        MemorySegment machine = createMachine(arena, name, triple, options);
        try {
            return emitWith(arena, machine, name, module, options.passes(), codegen);
        } finally {
            disposeTargetMachine.invokeExact(machine);
        }
    }

    /** The module's triple; a module without one gets {@link #DEFAULT_TRIPLE}. */
    private String tripleOf(Arena arena, MemorySegment module) throws Throwable {
        String triple = string((MemorySegment) getTarget.invokeExact(module));
        if (triple.isEmpty()) {
            triple = DEFAULT_TRIPLE;
            setTarget.invokeExact(module, arena.allocateFrom(triple));
        }
        return triple;
    }

    private MemorySegment createMachine(Arena arena, String name, String triple, Options options) throws Throwable {
        MemorySegment message = arena.allocate(ADDR);
        MemorySegment target = arena.allocate(ADDR);
        if ((int) targetFromTriple.invokeExact(arena.allocateFrom(triple), target, message) != 0) {
            throw new JitLoadException(name + ": no LLVM target for " + triple + ": " + takeMessage(message));
        }
        return (MemorySegment) createTargetMachine.invokeExact(target.get(ADDR, 0), arena.allocateFrom(triple),
                arena.allocateFrom(CPU), arena.allocateFrom(FEATURES), options.optLevel(), options.pic() ? 2 : 1,
                LLVM_CODE_MODEL_SMALL);
    }

    /** Verifies {@code module}, gives it the machine's data layout, runs {@code passes} and, when {@code codegen}, emits it. */
    private byte[] emitWith(Arena arena, MemorySegment machine, String name, MemorySegment module, String passes, boolean codegen)
            throws Throwable {
        MemorySegment message = arena.allocate(ADDR);
        if ((int) verifyModule.invokeExact(module, LLVM_RETURN_STATUS_ACTION, message) != 0) {
            throw new JitLoadException(name + ": the IR does not verify: " + takeMessage(message));
        }
        disposeMessage.invokeExact(message.get(ADDR, 0));
        MemorySegment layout = (MemorySegment) createDataLayout.invokeExact(machine);
        setDataLayout.invokeExact(module, layout);
        disposeDataLayout.invokeExact(layout);
        if (passes != null && !passes.isBlank()) {
            runPipeline(arena, name, module, passes, machine);
        }
        if (!codegen) {
            return null;
        }
        MemorySegment objectOut = arena.allocate(ADDR);
        if ((int) emitToBuffer.invokeExact(machine, module, LLVM_OBJECT_FILE, message, objectOut) != 0) {
            throw new JitLoadException(name + ": LLVM could not emit an object: " + takeMessage(message));
        }
        MemorySegment object = objectOut.get(ADDR, 0);
        try {
            long size = (long) bufferSize.invokeExact(object);
            // The memory buffer holds exactly `size` bytes.
            return ((MemorySegment) bufferStart.invokeExact(object)).reinterpret(size).toArray(ValueLayout.JAVA_BYTE);
        } finally {
            disposeBuffer.invokeExact(object);
        }
    }

    /**
     * A target machine kept for many compiles: {@link #emit} and {@link #optimize} create one per
     * call, and with it the subtarget (the code generator's tables) that a compile of a small
     * module spends much of its time building. One machine per triple and {@link Options} level
     * and relocation model; its {@link Options#passes} are ignored (each call names its own).
     * Every method is serialized with the compiler's other compiles (LLVM's target machines are
     * not thread safe), so any thread may call it; {@link #close} frees it, after which it refuses.
     */
    public final class Machine implements AutoCloseable {
        private final String triple;
        private final Options options;
        private MemorySegment machine;

        private Machine(String triple, Options options, MemorySegment machine) {
            this.triple = triple;
            this.options = options;
            this.machine = machine;
        }

        /** {@return the triple this machine compiles for} */
        public String triple() {
            return triple;
        }

        /** {@return the level and relocation model this machine compiles with} */
        public Options options() {
            return options;
        }

        /**
         * As {@link LlvmCompiler#optimize}, with this machine: verifies {@code module} and runs
         * {@code passes}, leaving the optimized IR in the module.
         *
         * @param name the module's name in messages
         * @param module an {@code LLVMModuleRef} whose triple is this machine's, of a context the caller owns
         * @param passes a new-pass-manager pipeline; null or blank for none
         * @throws JitLoadException if the module's triple is another, it does not verify or a pass fails
         * @throws IllegalStateException if the machine is closed
         */
        public void optimize(String name, MemorySegment module, String passes) throws JitLoadException {
            run(name, module, passes, false);
        }

        /**
         * As {@link LlvmCompiler#emit}, with this machine: verifies {@code module}, runs
         * {@code passes} and emits an object.
         *
         * @param name the module's name in messages
         * @param module an {@code LLVMModuleRef} whose triple is this machine's, of a context the caller owns
         * @param passes a new-pass-manager pipeline run before code generation; null or blank for none
         * @return the bytes of an ELF relocatable object
         * @throws JitLoadException if the module's triple is another, it does not verify, a pass fails or code
         *     generation fails
         * @throws IllegalStateException if the machine is closed
         */
        public byte[] emit(String name, MemorySegment module, String passes) throws JitLoadException {
            return run(name, module, passes, true);
        }

        private byte[] run(String name, MemorySegment module, String passes, boolean codegen) throws JitLoadException {
            synchronized (LlvmCompiler.this) {
                if (machine == null) {
                    throw new IllegalStateException("the target machine for " + triple + " is closed");
                }
                try (Arena arena = Arena.ofConfined()) {
                    String moduleTriple = tripleOf(arena, module);
                    if (!moduleTriple.equals(triple)) {
                        throw new JitLoadException(name + ": the module's triple is " + moduleTriple + ", the machine's " + triple);
                    }
                    return emitWith(arena, machine, name, module, passes, codegen);
                } catch (JitLoadException e) {
                    throw e;
                } catch (Throwable t) {
                    throw new JitLoadException(name + ": calling libLLVM failed: " + t, t);
                }
            }
        }

        /** Frees the machine; later calls refuse. Idempotent. */
        @Override
        public void close() {
            synchronized (LlvmCompiler.this) {
                if (machine != null) {
                    try {
                        disposeTargetMachine.invokeExact(machine);
                    } catch (Throwable t) {
                        throw new IllegalStateException("freeing the target machine failed: " + t, t);
                    } finally {
                        machine = null;
                    }
                }
            }
        }
    }

    /**
     * A target machine for {@code triple} with the level and relocation model of {@code options},
     * kept by the caller for many compiles. Any thread.
     *
     * @param triple a target triple, e.g. {@link #DEFAULT_TRIPLE}
     * @param options the level and relocation model ({@link Options#passes} is ignored)
     * @return the machine; the caller closes it
     * @throws JitLoadException if LLVM has no target for {@code triple}
     */
    public synchronized Machine machine(String triple, Options options) throws JitLoadException {
        try (Arena arena = Arena.ofConfined()) {
            return new Machine(triple, options, createMachine(arena, triple, triple, options));
        } catch (JitLoadException e) {
            throw e;
        } catch (Throwable t) {
            throw new JitLoadException(triple + ": calling libLLVM failed: " + t, t);
        }
    }

    /**
     * Reads and frees the message an LLVM-C function wrote to {@code slot} (an {@code char **} out
     * parameter), for callers of {@link #function}. Any thread, once per message.
     *
     * @param slot the out parameter, holding a message LLVM allocated or null
     * @return the message, stripped; {@code (no message)} when there is none
     * @throws Throwable if calling libLLVM fails
     */
    public String takeMessage(MemorySegment slot) throws Throwable {
        MemorySegment text = slot.get(ADDR, 0);
        if (text.address() == 0) {
            return "(no message)";
        }
        String s = string(text);
        disposeMessage.invokeExact(text);
        return s.strip();
    }

    private static String string(MemorySegment cString) {
        // A NUL-terminated C string of unknown length: getString stops at the NUL.
        return cString.address() == 0 ? "" : cString.reinterpret(Long.MAX_VALUE).getString(0);
    }
}
