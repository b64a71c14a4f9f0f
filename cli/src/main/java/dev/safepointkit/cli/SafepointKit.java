package dev.safepointkit.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point of {@code bin/safepointkit}. Every error the command line reports is one line on
 * stderr, {@code safepointkit COMMAND: what went wrong}: a bad option or value exits with status 2,
 * a failure while running (a missing file, an object that does not load, no libLLVM) with 1.
 * Setting {@value #TRACE_ENVIRONMENT} to 1 adds the stack trace of an unexpected failure.
 */
@Command(name = "safepointkit", mixinStandardHelpOptions = true, version = "Safepoint Kit 0.1.0",
        description = "Stack maps, safepoints and GC roots for native code compiled by LLVM.",
        subcommands = {DumpCommand.class, RunCommand.class, CompileCommand.class, DemoCommand.class, CommandLine.HelpCommand.class})
public final class SafepointKit {
    static final String TRACE_ENVIRONMENT = "SAFEPOINTKIT_TRACE";
    static final int USAGE = 2;
    static final int FAILED = 1;

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The command line with its one-line error handlers; made afresh so it writes to the current System.err. */
    static CommandLine commandLine() {
        CommandLine line = new CommandLine(new SafepointKit());
        line.setParameterExceptionHandler((e, args) -> {
            CommandLine command = e.getCommandLine();
            String name = command.getCommandSpec().qualifiedName();
            command.getErr().println(name + ": " + e.getMessage() + " (see '" + name + " --help')");
            command.getErr().flush();
            return USAGE;
        });
        line.setExecutionExceptionHandler((e, command, parsed) -> {
            command.getErr().println(command.getCommandSpec().qualifiedName() + ": " + describe(e));
            if ("1".equals(System.getenv(TRACE_ENVIRONMENT))) {
                e.printStackTrace(command.getErr());
            }
            command.getErr().flush();
            return FAILED;
        });
        return line;
    }

    /** One line for an exception: its message for the kinds a user can cause, else what it was. */
    static String describe(Throwable e) {
        String message = e.getMessage() == null ? "" : e.getMessage().strip().replace('\n', ' ');
        if (e instanceof java.io.IOException || e instanceof dev.safepointkit.host.JitLoadException
                || e instanceof dev.safepointkit.host.LlvmUnavailableException) {
            return message;
        }
        if (e instanceof OutOfMemoryError) {
            return "out of memory: " + message;
        }
        return "internal error: " + e + " (set " + TRACE_ENVIRONMENT + "=1 for the stack trace)";
    }
}
