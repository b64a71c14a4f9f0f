package dev.safepointkit.cli;

import dev.safepointkit.stackmap.MachOStackMaps;
import dev.safepointkit.stackmap.ObjectStackMaps;
import dev.safepointkit.stackmap.StackMapObject;
import dev.safepointkit.stackmap.macho.MachOFile;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code safepointkit dump [--symbols] [--json] FILE...}: prints the stack maps of ELF, Mach-O and
 * COFF files as {@code llvm-readobj --stackmap} does, every concatenated stack map included.
 *
 * <p>Each file is read on its own: one that cannot be read is reported on stderr in one line and
 * the others are still printed; the exit status is 1 if any file failed.
 */
@Command(name = "dump", mixinStandardHelpOptions = true,
        description = {"Print the LLVM stack maps of ELF objects and linked files, and of Mach-O and COFF objects.",
            "Without options the output is that of llvm-readobj --stackmap, byte for byte, except that every "
                    + "stack map of a linked file is printed, not only the first."})
final class DumpCommand implements Callable<Integer> {

    @Option(names = "--symbols", description = "Add the function's symbol name to each function line.")
    boolean symbols;

    @Option(names = "--json", description = "Print the same content as a JSON array, one object per file.")
    boolean json;

    @Parameters(paramLabel = "FILE", arity = "1..*", description = "ELF object, shared object or executable; Mach-O file; COFF object.")
    List<String> files = new ArrayList<>();

    @Override
    public Integer call() {
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);
        int status = run(files, symbols, json, Path.of(""), out, System.err);
        out.flush();
        return status;
    }

    /**
     * Dumps {@code files}, resolved against {@code workingDirectory} but printed as given.
     *
     * @return 0 when every file was printed, 1 otherwise
     */
    static int run(List<String> files, boolean symbols, boolean json, Path workingDirectory, PrintStream out,
            PrintStream err) {
        int status = 0;
        StringBuilder text = new StringBuilder();
        List<String> jsonObjects = new ArrayList<>();
        for (String name : files) {
            // Each file's mapping lives only while it is printed.
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment image = InputFiles.map(workingDirectory.resolve(name), arena);
                StackMapObject maps = StackMapObject.read(image).orElseThrow(() -> new IOException("no "
                        + (MachOFile.hasMagic(image) ? MachOStackMaps.SEGMENT_NAME + "," + MachOStackMaps.SECTION_NAME
                                : ObjectStackMaps.SECTION_NAME) + " section"));
                if (json) {
                    jsonObjects.add(JsonPrinter.print(name, maps));
                } else {
                    text.setLength(0);
                    ReadobjPrinter.print(name, maps, symbols, text);
                    out.print(text);
                }
            } catch (IOException | RuntimeException e) {
                err.println("safepointkit dump: " + name + ": " + InputFiles.describe(e));
                status = 1;
            }
        }
        if (json) {
            out.print(jsonObjects.isEmpty() ? "[]\n" : "[\n" + String.join(",\n", jsonObjects) + "\n]\n");
        }
        out.flush();
        return status;
    }
}
