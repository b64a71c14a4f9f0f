package dev.safepointkit.compile;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.patch.CodePatcher;
import java.nio.file.Path;

/**
 * One process of the cache race: loads the runtime and the split program lazily with the cache
 * directory given, calls every function and prints the results and the counts on one line.
 */
public final class CacheRace {
    private CacheRace() {}

    public static void main(String[] args) throws Throwable {
        ObjectCache cache = new ObjectCache(Path.of(args[0]), Long.MAX_VALUE);
        try (JitHost host = new JitHost(); CodePatcher patcher = new CodePatcher(host)) {
            CompilePipeline p = CompilePipeline.builder(host).patcher(patcher).cache(cache).llvm(LlvmCompiler::open).build();
            System.out.println(CacheTest.runBoth(host, p) + " " + p.stats().cacheMisses());
        }
    }
}
