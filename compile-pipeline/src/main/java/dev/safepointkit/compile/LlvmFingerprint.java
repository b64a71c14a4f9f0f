package dev.safepointkit.compile;

import dev.safepointkit.host.LlvmCompiler;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Which libLLVM a warm start would compile with, told without loading it: the real path, size and
 * modification time of the first file {@link LlvmCompiler#open()} would try that exists (the
 * environment's path, Debian's {@code libLLVM.so.19.1}, the {@code llvm-19-dev} link). Part of the
 * manifest keys, so that an upgraded library misses every manifest; the object keys themselves
 * carry the version the library reports. Stateless; any thread.
 */
final class LlvmFingerprint {
    private static final List<String> CANDIDATES = List.of("/usr/lib/x86_64-linux-gnu/libLLVM.so.19.1",
            "/usr/lib/x86_64-linux-gnu/libLLVM-19.so", "/usr/lib/llvm-19/lib/libLLVM.so.1");

    private LlvmFingerprint() {}

    static byte[] current() {
        String env = System.getenv(LlvmCompiler.LIBRARY_ENVIRONMENT);
        StringBuilder out = new StringBuilder();
        for (String candidate : env == null || env.isBlank() ? CANDIDATES : List.of(env)) {
            Path file = Path.of(candidate);
            try {
                Path real = file.toRealPath();
                out.append(real).append(' ').append(Files.size(real)).append(' ').append(Files.getLastModifiedTime(real).toMillis());
                break;
            } catch (IOException e) {
                out.append(candidate).append(" absent; ");
            }
        }
        return out.toString().getBytes(StandardCharsets.UTF_8);
    }
}
