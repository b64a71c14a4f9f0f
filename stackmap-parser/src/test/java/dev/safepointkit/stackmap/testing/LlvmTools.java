package dev.safepointkit.stackmap.testing;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
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
        return requireProgram(tool, "apt-get install llvm-19 lld-19");
    }

    /** The path of {@code tool} on the PATH; skips or fails without it, saying how to install it. */
    public static Path requireProgram(String tool, String install) {
        String path = System.getenv().getOrDefault("PATH", "");
        for (String dir : path.split(File.pathSeparator)) {
            Path candidate = Path.of(dir.isEmpty() ? "." : dir, tool);
            if (Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        return missing(tool + " is not installed (" + install + ")");
    }

    /**
     * What {@code open} returns (for example libLLVM opened through its search); when it throws,
     * skips or fails with the exception's message.
     */
    public static <T> T requireAvailable(Callable<T> open) {
        try {
            return open.call();
        } catch (Exception e) {
            return missing(e.getMessage());
        }
    }

    private static <T> T missing(String message) {
        if ("true".equals(System.getenv("CI"))) {
            Assertions.fail(message + "; CI must run this test");
        }
        Assumptions.abort(message);
        throw new AssertionError("unreachable");
    }
}
