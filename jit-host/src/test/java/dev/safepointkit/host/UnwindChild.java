package dev.safepointkit.host;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Runs, in a JVM of its own, a case in which a C++ exception travels through JIT frames: if the
 * unwinder cannot cross them, the exception reaches the JVM's frames and std::terminate aborts
 * the process, so {@link UnwindTest} forks this and reads what it printed and its exit code.
 *
 * <p>Arguments: the runtime library, the directory of the JIT fixtures, and a case:
 * {@code through FIXTURE} (throw_outer's chain inside rt_catch_below, a C++ catch below it) or
 * {@code landingpad} (catch.o's own landingpad), or {@code twice} (deregisters unwind.o's
 * {@code .eh_frame} a second time after its unload: libgcc aborts the process if that reaches it).
 * Prints {@code outcome=O value=V} and then {@code registrations loaded=N unloaded=M}. Single-threaded.
 */
public final class UnwindChild {
    private UnwindChild() {
    }

    public static void main(String[] args) throws Throwable {
        System.load(args[0]);
        Path fixtures = Path.of(args[1]);
        long loaded;
        try (JitHost host = new JitHost(); Arena arena = Arena.ofConfined()) {
            if (args[2].equals("through")) {
                host.load(args[3], MemorySegment.ofArray(Files.readAllBytes(fixtures.resolve(args[3]))));
                MethodHandle below = UnwindRuntime.function("rt_catch_below", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
                MemorySegment outcome = arena.allocate(ValueLayout.JAVA_INT);
                long value = (long) below.invokeExact(MemorySegment.ofAddress(host.address("throw_outer").orElseThrow()), 42L,
                        outcome);
                System.out.println("outcome=" + outcome.get(ValueLayout.JAVA_INT, 0) + " value=" + value);
            } else if (args[2].equals("twice")) {
                JitObject unwind = host.load("unwind.o", MemorySegment.ofArray(Files.readAllBytes(fixtures.resolve("unwind.o"))));
                java.lang.reflect.Field field = JitObject.class.getDeclaredField("ehFrames");
                field.setAccessible(true);
                EhFrameRegistration registration = (EhFrameRegistration) field.get(unwind);
                host.unload(unwind, false);
                long live = JitHost.liveEhFrameRegistrations();
                String outcome;
                try {
                    registration.deregister();
                    outcome = "deregistered-again";
                } catch (IllegalStateException e) {
                    outcome = e.getMessage().contains("already deregistered") ? "refused" : e.getMessage();
                }
                System.out.println("outcome=" + outcome + " value=" + (JitHost.liveEhFrameRegistrations() - live));
            } else {
                host.load("catch.o", MemorySegment.ofArray(Files.readAllBytes(fixtures.resolve("catch.o"))));
                long value = (long) host.downcall("catch_long", UnwindRuntime.LONG_LONG).invokeExact(7L);
                long none = (long) host.downcall("catch_long", UnwindRuntime.LONG_LONG).invokeExact(0L);
                System.out.println("outcome=" + none + " value=" + value);
            }
            loaded = JitHost.liveEhFrameRegistrations();
        }
        System.out.println("registrations loaded=" + loaded + " unloaded=" + JitHost.liveEhFrameRegistrations());
    }
}
