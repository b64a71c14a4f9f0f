package dev.safepointkit.cli;

import dev.safepointkit.events.perf.JitdumpWriter;
import dev.safepointkit.events.perf.PerfMapWriter;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code safepointkit run}: loads x86-64 objects into the JIT host, in the order given, and calls
 * one of their functions with 64-bit integer arguments, printing its 64-bit result. A safepoint
 * registry hears every load, so an object whose stack maps it refuses is not loaded.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = {"Load LLVM objects into the JIT host and call a function: i64 arguments, i64 result.",
            "With --perf-map and --jitdump, perf can name the JIT frames (see scripts/perf-jit-demo.sh)."})
final class RunCommand implements Callable<Integer> {

    @Option(names = "--call", required = true, paramLabel = "FUNCTION", description = "The function to call.")
    String function;

    @Option(names = "--arg", paramLabel = "N", description = {"An i64 argument; repeat for more.",
        "Give exactly as many as the function takes: an object file does not say, so nothing checks it."})
    List<Long> arguments = new ArrayList<>();

    @Option(names = "--repeat", paramLabel = "N", defaultValue = "1",
            description = "Call it N times, 1 to 2147483647 (default 1).")
    int repeat;

    @Option(names = "--perf-map", description = "Write /tmp/perf-<pid>.map.")
    boolean perfMap;

    @Option(names = "--jitdump", paramLabel = "DIR", description = "Write DIR/jit-<pid>.dump for perf inject --jit.")
    Path jitdump;

    @Parameters(paramLabel = "OBJECT", arity = "1..*", description = "ELF relocatable objects (x86-64).")
    List<Path> objects = new ArrayList<>();

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (repeat < 1) {
            throw new ParameterException(spec.commandLine(), "--repeat " + repeat + " is out of range (1 to 2147483647)");
        }
        if (jitdump != null && Files.exists(jitdump) && !Files.isDirectory(jitdump)) {
            throw new ParameterException(spec.commandLine(), "--jitdump " + jitdump + " is not a directory");
        }
        List<byte[]> images = new ArrayList<>();
        for (Path object : objects) {
            try {
                images.add(InputFiles.read(object));
            } catch (IOException e) {
                System.err.println("safepointkit run: " + object + ": " + InputFiles.describe(e));
                return SafepointKit.FAILED;
            }
        }
        PerfMapWriter map = null;
        JitdumpWriter dump = null;
        try (JitHost host = new JitHost()) {
            // As any host would: code whose safepoints cannot be registered is refused.
            host.addListener(new RegistryListener(new SafepointRegistry()));
            if (perfMap) {
                map = new PerfMapWriter();
                host.addListener(map);
            }
            if (jitdump != null) {
                Files.createDirectories(jitdump);
                dump = JitdumpWriter.inDirectory(jitdump);
                host.addListener(dump);
            }
            for (int i = 0; i < objects.size(); i++) {
                host.load(objects.get(i).toString(), MemorySegment.ofArray(images.get(i)));
            }
            MemoryLayout[] params = new MemoryLayout[arguments.size()];
            java.util.Arrays.fill(params, ValueLayout.JAVA_LONG);
            MethodHandle target = host.downcall(function, FunctionDescriptor.of(ValueLayout.JAVA_LONG, params))
                    .asSpreader(Object[].class, arguments.size());
            Object[] args = arguments.toArray();
            long result = 0;
            long start = System.nanoTime();
            for (int i = 0; i < repeat; i++) {
                result = invoke(target, args);
            }
            long elapsed = System.nanoTime() - start;
            System.out.println(function + "(" + String.join(", ", arguments.stream().map(String::valueOf).toList()) + ") = " + result);
            if (repeat > 1) {
                System.out.printf("%d calls in %.1f ms%n", repeat, elapsed / 1e6);
            }
            return 0;
        } catch (JitLoadException e) {
            System.err.println("safepointkit run: " + e.getMessage());
            return SafepointKit.FAILED;
        } catch (IOException e) {
            System.err.println("safepointkit run: " + (jitdump == null ? "" : jitdump + ": ") + InputFiles.describe(e));
            return SafepointKit.FAILED;
        } finally {
            if (dump != null) {
                dump.close();
            }
            if (map != null) {
                map.close();
            }
        }
    }

    private static long invoke(MethodHandle target, Object[] args) throws Exception {
        try {
            return (long) target.invoke(args);
        } catch (Exception | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
