package dev.safepointkit.compile;

import static dev.safepointkit.compile.PipelineFixtures.utf8;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.patch.CodePatcher;
import org.junit.jupiter.api.Test;

/**
 * An ifunc, like an alias, is a global the pipeline cannot cut out or relink: a lazy module or a
 * runtime that holds one is refused, naming it, before anything of it is declared or loaded.
 */
class IFuncRefusalTest {
    private static final String IFUNC_MODULE = """
            define i64 @f_impl(i64 %x) {
              ret i64 %x
            }
            define ptr @f_resolver() {
              ret ptr @f_impl
            }
            @f = ifunc i64 (i64), ptr @f_resolver
            """;

    @Test
    void aLazyModuleWithAnIFuncIsRefusedNamingItAndNothingOfItIsDeclared() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            JitLoadException e = assertThrows(JitLoadException.class, () -> p.loadLazy("ifunc.ll", utf8(IFUNC_MODULE)));
            assertTrue(e.getMessage().contains("ifunc.ll") && e.getMessage().contains("ifunc"), e.getMessage());
            assertTrue(host.address("f_impl").isEmpty() && host.address("f").isEmpty(), "nothing of ifunc.ll is declared");
            assertTrue(host.objects().isEmpty(), "nothing was loaded");
        }
    }

    @Test
    void aRuntimeWithAnIFuncIsRefusedNamingIt() throws Throwable {
        LlvmCompiler llvm = PipelineFixtures.llvm();
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).llvm(() -> llvm).build();
            JitLoadException e = assertThrows(JitLoadException.class, () -> p.runtime("rt-ifunc.ll", utf8(IFUNC_MODULE)));
            assertTrue(e.getMessage().contains("rt-ifunc.ll") && e.getMessage().contains("ifunc"), e.getMessage());
            assertTrue(host.objects().isEmpty(), "nothing was loaded");
        }
    }
}
