package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.testing.LlvmTools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How {@link LlvmCompiler#open()} finds libLLVM 19, and what it says when it cannot. */
class LlvmLibraryTest {
    private static final Path NOWHERE = Path.of("/nonexistent/llvm-19/lib/libLLVM.so.1");

    @TempDir
    Path dir;

    /** The standard search without llvm-config and without the llvm-19-dev link. */
    private static LlvmLibrary.Search loaderOnly(String llvmConfig) {
        LlvmLibrary.Search standard = LlvmLibrary.Search.standard();
        return new LlvmLibrary.Search(Optional.empty(), "test", llvmConfig, standard.loaderNames(), NOWHERE);
    }

    /** A shared library whose LLVMGetVersion reports {@code major.minor.patch}, or none when {@code major} < 0. */
    private Path fakeLibrary(String name, int major) throws Exception {
        Path gcc = LlvmTools.requireProgram("gcc", "apt-get install gcc");
        Path source = dir.resolve(name + ".c");
        Files.writeString(source, major < 0 ? "int not_llvm(void) { return 0; }\n"
                : "void LLVMGetVersion(unsigned *a, unsigned *b, unsigned *c) { *a = " + major + "; *b = 1; *c = 0; }\n");
        Path library = dir.resolve(name);
        Process p = new ProcessBuilder(gcc.toString(), "-shared", "-fPIC", "-o", library.toString(), source.toString())
                .inheritIO().start();
        assertEquals(0, p.waitFor(), "gcc");
        return library;
    }

    /** An executable llvm-config that prints {@code libdir} for --libdir. */
    private Path fakeLlvmConfig(Path libdir) throws IOException {
        Path script = dir.resolve("llvm-config-19");
        Files.writeString(script, "#!/bin/sh\n[ \"$1\" = --libdir ] && echo " + libdir + "\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        return script;
    }

    @Test
    void findsDebiansLibllvm19ThroughTheLoaderWithoutTheDevLink() {
        LlvmCompiler llvm = LlvmTools.requireAvailable(() -> LlvmCompiler.open(loaderOnly("no-such-llvm-config-19")));
        assertTrue(llvm.llvmVersion().startsWith("19."), llvm.llvmVersion());
        assertTrue(llvm.library().isAbsolute(), "the loaded file, found among the mappings: " + llvm.library());
        assertTrue(llvm.library().getFileName().toString().startsWith("libLLVM"), llvm.library().toString());
    }

    @Test
    void theStandardSearchOpensLlvm19() {
        LlvmCompiler llvm = LlvmTools.requireAvailable(LlvmCompiler::open);
        assertTrue(llvm.llvmVersion().startsWith("19."), llvm.llvmVersion());
    }

    @Test
    void llvmConfigsLibdirComesBeforeTheLoadersNames() throws Exception {
        Path real = LlvmTools.requireAvailable(() -> LlvmCompiler.open(loaderOnly("no-such-llvm-config-19"))).library();
        Path libdir = Files.createDirectory(dir.resolve("lib"));
        Path link = Files.createSymbolicLink(libdir.resolve("libLLVM.so.1"), real);
        try {
            LlvmCompiler llvm = LlvmCompiler.open(loaderOnly(fakeLlvmConfig(libdir).toString()));
            assertEquals(link, llvm.library());
        } finally {
            Files.delete(link);
        }
    }

    @Test
    void aCandidateThatIsNotLlvm19IsPassedOverAndNamed() throws Exception {
        Path libdir = Files.createDirectory(dir.resolve("lib"));
        Files.move(fakeLibrary("libLLVM.so.19.1", 18), libdir.resolve("libLLVM.so.19.1"));
        LlvmLibrary.Search search = new LlvmLibrary.Search(Optional.empty(), "test", fakeLlvmConfig(libdir).toString(),
                List.of("libLLVM-no-such.so.19.1"), NOWHERE);
        LlvmUnavailableException e = assertThrows(LlvmUnavailableException.class, () -> LlvmCompiler.open(search));
        assertTrue(e.getMessage().contains(libdir.resolve("libLLVM.so.19.1") + ": it is LLVM 18.1.0, not 19"), e.getMessage());
    }

    @Test
    void anExplicitLibraryOfAnotherVersionIsRefused() throws Exception {
        Path old = fakeLibrary("libLLVM-18.so", 18);
        LlvmUnavailableException e = assertThrows(LlvmUnavailableException.class, () -> LlvmCompiler.open(old));
        assertEquals("cannot use " + old + " (given path) as libLLVM 19: it is LLVM 18.1.0, not 19", e.getMessage());
        Path none = fakeLibrary("libnot-llvm.so", -1);
        e = assertThrows(LlvmUnavailableException.class, () -> LlvmCompiler.open(none));
        assertTrue(e.getMessage().endsWith("no LLVMGetVersion, so not LLVM 16 or later"), e.getMessage());
    }

    @Test
    void nothingFoundListsEveryPlaceTriedAndThePackage() {
        LlvmLibrary.Search search = new LlvmLibrary.Search(Optional.empty(), "test", "no-such-llvm-config-19",
                List.of("libLLVM-no-such.so.19.1", "libLLVM-no-such-19.so"), NOWHERE);
        LlvmUnavailableException e = assertThrows(LlvmUnavailableException.class, () -> LlvmCompiler.open(search));
        String m = e.getMessage();
        int config = m.indexOf("no-such-llvm-config-19: not on the PATH");
        int first = m.indexOf("libLLVM-no-such.so.19.1: the dynamic loader cannot load it");
        int second = m.indexOf("libLLVM-no-such-19.so: the dynamic loader cannot load it");
        int last = m.indexOf(NOWHERE + ": no such file");
        assertTrue(config >= 0 && first > config && second > first && last > second, "in search order: " + m);
        assertTrue(m.contains("apt-get install libllvm19"), m);
        assertFalse(m.contains("\n"), "one line: " + m);
    }

    @Test
    void anExplicitPathIsTheOnlyPlaceTried() {
        LlvmLibrary.Search search = LlvmLibrary.Search.standard().withExplicit(NOWHERE, "$" + LlvmCompiler.LIBRARY_ENVIRONMENT);
        LlvmUnavailableException e = assertThrows(LlvmUnavailableException.class, () -> LlvmCompiler.open(search));
        assertTrue(e.getMessage().startsWith("libLLVM 19 not found at " + NOWHERE + " ($SAFEPOINTKIT_LLVM_LIB): no such file; "),
                e.getMessage());
        assertFalse(e.getMessage().contains("libLLVM.so.19.1:"), "no other place tried: " + e.getMessage());
    }
}
