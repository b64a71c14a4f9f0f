package dev.safepointkit.stackmap.testing;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

/**
 * Finds the LLVM 19 tools that some tests run. On a developer's machine without them such a test
 * is skipped; in CI ({@code CI=true}), where .ci/run installs them, their absence fails the test.
 */
public final class LlvmTools {
    private LlvmTools() {
    }

    /** The path of {@code tool} (e.g. {@code llvm-readobj-19}) on the PATH; skips or fails without it. */
    public static Path require(String tool) {
        String path = System.getenv().getOrDefault("PATH", "");
        for (String dir : path.split(File.pathSeparator)) {
            Path candidate = Path.of(dir.isEmpty() ? "." : dir, tool);
            if (Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        return missing(tool + " is not installed (apt-get install llvm-19 lld-19)");
    }

    /** {@code file} (for example libLLVM), which llvm-19 installs; skips or fails without it. */
    public static Path requireFile(Path file) {
        return Files.exists(file) ? file : missing(file + " is missing (apt-get install llvm-19)");
    }

    private static Path missing(String message) {
        if ("true".equals(System.getenv("CI"))) {
            Assertions.fail(message + "; CI must run this test");
        }
        Assumptions.abort(message);
        throw new AssertionError("unreachable");
    }
}
