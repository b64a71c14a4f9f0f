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

    JitObject compile(String name) throws Exception;

    /** Compiles {@code ir} (LLVM IR text) through libLLVM and loads the object. */
    static LazyCompiler fromIr(JitHost host, LlvmCompiler llvm, String ir, LlvmCompiler.Options options) {
        return name -> {
            byte[] object = llvm.compile(name, ir, options);
            return host.load(name + ".o", MemorySegment.ofArray(object));
        };
    }

    /** Loads an object llc already wrote. */
    static LazyCompiler fromObject(JitHost host, String objectName, byte[] elf) {
        byte[] copy = elf.clone();
        return name -> host.load(objectName, MemorySegment.ofArray(copy));
    }
}
