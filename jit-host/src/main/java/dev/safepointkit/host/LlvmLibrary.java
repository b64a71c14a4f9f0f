package dev.safepointkit.host;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * A libLLVM 19 opened in this process, and the search that finds one.
 *
 * <p>The search, in order: an explicit path (the caller's, else the environment variable
 * {@value #ENVIRONMENT}); the directory {@code llvm-config-19 --libdir} names; the dynamic
 * loader's names {@code libLLVM.so.19.1} (Debian's {@code libllvm19}) and {@code libLLVM-19.so};
 * last {@code /usr/lib/llvm-19/lib/libLLVM.so.1}, a link only {@code llvm-19-dev} installs. An
 * explicit path is the only place tried when given. Each candidate must report version 19 through
 * {@code LLVMGetVersion}; one that does not is passed over and named in the error.
 *
 * <p>Immutable once opened; the library stays loaded for the life of the process. The search may
 * run on any thread.
 */
final class LlvmLibrary {
    /** The environment variable that names libLLVM's path. */
    static final String ENVIRONMENT = "SAFEPOINTKIT_LLVM_LIB";
    static final int REQUIRED_MAJOR = 19;
    private static final String INSTALL_HINT = "install it with 'apt-get install libllvm19' (Debian; 'llvm-19' brings it too),"
            + " or give its path (" + ENVIRONMENT + ", --llvm-lib); precompiled objects load without it";
    /** File names of libLLVM 19 that a lib directory may hold. */
    private static final List<String> LIBDIR_NAMES = List.of("libLLVM.so.19.1", "libLLVM-19.so", "libLLVM.so.1", "libLLVM.so");

    /** Where to look; {@link #standard()} is what {@link LlvmCompiler#open()} uses, tests vary it. */
    record Search(Optional<String> explicit, String explicitOrigin, String llvmConfig, List<String> loaderNames,
                  Path lastResort) {
        static Search standard() {
            String env = System.getenv(ENVIRONMENT);
            return new Search(env == null || env.isBlank() ? Optional.empty() : Optional.of(env), "$" + ENVIRONMENT,
                    "llvm-config-19", List.of("libLLVM.so.19.1", "libLLVM-19.so"), Path.of("/usr/lib/llvm-19/lib/libLLVM.so.1"));
        }

        Search withExplicit(Path library, String origin) {
            return new Search(Optional.of(library.toString()), origin, llvmConfig, loaderNames, lastResort);
        }
    }

    private final SymbolLookup lookup;
    private final Path path;
    private final String version;

    private LlvmLibrary(SymbolLookup lookup, Path path, String version) {
        this.lookup = lookup;
        this.path = path;
        this.version = version;
    }

    SymbolLookup lookup() {
        return lookup;
    }

    /** The file that was loaded. */
    Path path() {
        return path;
    }

    /** {@code major.minor.patch} as the library reports it. */
    String version() {
        return version;
    }

    static LlvmLibrary find(Search search) throws LlvmUnavailableException {
        if (search.explicit().isPresent()) {
            String where = search.explicit().get();
            String place = where + " (" + search.explicitOrigin() + ")";
            if (!Files.exists(Path.of(where))) {
                throw new LlvmUnavailableException("libLLVM 19 not found at " + place + ": no such file; " + INSTALL_HINT, null);
            }
            String notLibrary = notAnElfFile(Path.of(where));
            if (notLibrary != null) {
                // Checked before the dynamic loader sees it: the JVM warns on stderr about what it cannot load.
                throw new LlvmUnavailableException("cannot use " + place + " as libLLVM 19: " + notLibrary, null);
            }
            try {
                return open(Path.of(where).toString(), Path.of(where));
            } catch (Refused r) {
                throw new LlvmUnavailableException("cannot use " + place + " as libLLVM 19: " + r.getMessage(), r.getCause());
            }
        }
        List<String> tried = new ArrayList<>();
        List<Path> files = new ArrayList<>();
        Optional<Path> libdir = libdir(search.llvmConfig(), tried);
        if (libdir.isPresent()) {
            List<Path> found = LIBDIR_NAMES.stream().map(libdir.get()::resolve).filter(Files::exists).toList();
            if (found.isEmpty()) {
                tried.add(search.llvmConfig() + " --libdir: " + libdir.get() + " holds none of " + String.join(", ", LIBDIR_NAMES));
            }
            files.addAll(found);
        }
        for (Path file : files) {
            Optional<LlvmLibrary> opened = attempt(file.toString(), file, tried);
            if (opened.isPresent()) {
                return opened.get();
            }
        }
        for (String name : search.loaderNames()) {
            Optional<LlvmLibrary> opened = attempt(name, null, tried);
            if (opened.isPresent()) {
                return opened.get();
            }
        }
        if (Files.exists(search.lastResort())) {
            Optional<LlvmLibrary> opened = attempt(search.lastResort().toString(), search.lastResort(), tried);
            if (opened.isPresent()) {
                return opened.get();
            }
        } else {
            tried.add(search.lastResort() + ": no such file");
        }
        throw new LlvmUnavailableException("libLLVM 19 not found; tried " + String.join("; ", tried) + "; " + INSTALL_HINT, null);
    }

    /** Why {@code file} cannot be a shared library, or null when it starts like an ELF file. */
    private static String notAnElfFile(Path file) {
        if (Files.isDirectory(file)) {
            return "it is a directory";
        }
        try (InputStream in = Files.newInputStream(file)) {
            byte[] magic = in.readNBytes(4);
            return magic.length == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F' ? null
                    : "it is not an ELF shared library";
        } catch (IOException e) {
            return "it cannot be read (" + e.getMessage() + ")";
        }
    }

    private static Optional<LlvmLibrary> attempt(String name, Path file, List<String> tried) {
        try {
            return Optional.of(open(name, file));
        } catch (Refused r) {
            tried.add(name + ": " + r.getMessage());
            return Optional.empty();
        }
    }

    /** Runs {@code llvm-config --libdir}; an absent or failing tool is noted in {@code tried}. */
    private static Optional<Path> libdir(String llvmConfig, List<String> tried) {
        Process process;
        try {
            process = new ProcessBuilder(llvmConfig, "--libdir").redirectErrorStream(true).start();
        } catch (IOException e) {
            tried.add(llvmConfig + ": not on the PATH");
            return Optional.empty();
        }
        try (InputStream in = process.getInputStream()) {
            String out = new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!process.waitFor(10, TimeUnit.SECONDS) || process.exitValue() != 0 || out.isEmpty() || out.contains("\n")) {
                process.destroyForcibly();
                tried.add(llvmConfig + " --libdir: failed (" + out.lines().findFirst().orElse("no output") + ")");
                return Optional.empty();
            }
            return Optional.of(Path.of(out));
        } catch (IOException e) {
            tried.add(llvmConfig + " --libdir: " + e.getMessage());
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            tried.add(llvmConfig + " --libdir: interrupted");
            return Optional.empty();
        }
    }

    /** A candidate that does not load, or is not LLVM 19; the message says which. */
    private static final class Refused extends Exception {
        private static final long serialVersionUID = 1L;

        Refused(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * Loads {@code name} (a path, or a name for the dynamic loader's search) and checks its version.
     *
     * @param file the file when {@code name} is a path; null to find it among the process's mappings
     */
    private static LlvmLibrary open(String name, Path file) throws Refused {
        SymbolLookup lookup;
        try {
            lookup = SymbolLookup.libraryLookup(name, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new Refused("the dynamic loader cannot load it", e);
        }
        Optional<MemorySegment> getVersion = lookup.find("LLVMGetVersion");
        if (getVersion.isEmpty()) {
            throw new Refused("no LLVMGetVersion, so not LLVM 16 or later", null);
        }
        int[] v = new int[3];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_INT, 3);
            MethodHandle call = Linker.nativeLinker().downcallHandle(getVersion.get(), FunctionDescriptor.ofVoid(
                    ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
            call.invokeExact(out, out.asSlice(4), out.asSlice(8));
            for (int i = 0; i < 3; i++) {
                v[i] = out.getAtIndex(ValueLayout.JAVA_INT, i);
            }
        } catch (Throwable t) {
            throw new Refused("LLVMGetVersion failed: " + t, t);
        }
        String version = v[0] + "." + v[1] + "." + v[2];
        if (v[0] != REQUIRED_MAJOR) {
            throw new Refused("it is LLVM " + version + ", not " + REQUIRED_MAJOR, null);
        }
        Path loaded = file != null ? file : mappedFile(getVersion.get().address()).orElse(Path.of(name));
        return new LlvmLibrary(lookup, loaded, version);
    }

    /** The file mapped at {@code address} in this process, from /proc/self/maps. */
    private static Optional<Path> mappedFile(long address) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
                String[] f = line.trim().split("\\s+", 6);
                int dash = f[0].indexOf('-');
                if (f.length == 6 && dash > 0 && f[5].startsWith("/")) {
                    long start = Long.parseUnsignedLong(f[0], 0, dash, 16);
                    long end = Long.parseUnsignedLong(f[0], dash + 1, f[0].length(), 16);
                    if (Long.compareUnsigned(address, start) >= 0 && Long.compareUnsigned(address, end) < 0) {
                        return Optional.of(Path.of(f[5]));
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            // Only the name of the loaded file is lost: the caller reports the loader's name instead.
        }
        return Optional.empty();
    }
}
