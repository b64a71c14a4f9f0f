package dev.safepointkit.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of {@code bin/safepointkit}. */
@Command(name = "safepointkit", mixinStandardHelpOptions = true, version = "Safepoint Kit 0.1.0",
        description = "Stack maps, safepoints and GC roots for native code compiled by LLVM.",
        subcommands = {DumpCommand.class, RunCommand.class, DemoCommand.class, CommandLine.HelpCommand.class})
public final class SafepointKit {

    public static void main(String[] args) {
        System.exit(new CommandLine(new SafepointKit()).execute(args));
    }
}
