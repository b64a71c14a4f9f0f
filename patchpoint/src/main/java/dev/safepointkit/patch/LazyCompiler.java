package dev.safepointkit.patch;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.host.LlvmCompiler;
import java.lang.foreign.MemorySegment;

/**
 * Makes a declared function exist: called on the first call through its stub, on the calling
 * thread, with the thread's arguments saved. It loads an object that defines the function into the
 * patcher's host and returns it.
 */
@FunctionalInterface
public interface LazyCompiler {

    /**
     * Makes {@code name} exist. Runs under the patcher's lock, often inside JIT code: it must not
     * stop the world (the patcher refuses its own stopping calls from here).
     *
     * @param name the declared function being compiled
     * @return a loaded object of the patcher's host that defines {@code name} as a global function
     * @throws Exception any failure; the call then continues into the declared fallback, or halts
     */
    JitObject compile(String name) throws Exception;

    /**
     * Compiles {@code ir} (LLVM IR text) through libLLVM and loads the object.
     *
     * @param host the patcher's host, which loads the object
     * @param llvm the libLLVM bridge that compiles it
     * @param ir the module's LLVM IR text, which defines the function
     * @param options how to compile it
     * @return a compiler that compiles and loads {@code ir} at each call
     */
    static LazyCompiler fromIr(JitHost host, LlvmCompiler llvm, String ir, LlvmCompiler.Options options) {
        return name -> {
            byte[] object = llvm.compile(name, ir, options);
            return host.load(name + ".o", MemorySegment.ofArray(object));
        };
    }

    /**
     * Loads an object llc already wrote.
     *
     * @param host the patcher's host, which loads the object
     * @param objectName the name the loaded object gets
     * @param elf the ELF relocatable object; copied now
     * @return a compiler that loads a copy of {@code elf} at each call
     */
    static LazyCompiler fromObject(JitHost host, String objectName, byte[] elf) {
        byte[] copy = elf.clone();
        return name -> host.load(objectName, MemorySegment.ofArray(copy));
    }
}
