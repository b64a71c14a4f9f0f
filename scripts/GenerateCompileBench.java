import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes the compile pipeline's benchmark program: {@code prog.ll} with FUNCTIONS functions of
 * which {@code entry} reaches REACHED (each calls the runtime's {@code rt_mix}; the unreached ones
 * also call each other, so that nothing but laziness skips them), a {@code main} for lli, and
 * {@code runtime.ll}. Run as {@code java scripts/GenerateCompileBench.java OUTDIR [FUNCTIONS [REACHED]]}.
 */
public final class GenerateCompileBench {
    public static void main(String[] args) throws IOException {
        Path out = Files.createDirectories(Path.of(args[0]));
        int functions = args.length > 1 ? Integer.parseInt(args[1]) : 1000;
        int reached = args.length > 2 ? Integer.parseInt(args[2]) : 10;
        StringBuilder p = new StringBuilder("declare i64 @rt_mix(i64, i64)\n\n");
        p.append("define i64 @entry(i64 %x) {\nentry:\n  %s0 = add i64 %x, 0\n");
        for (int i = 0; i < reached; i++) {
            p.append("  %c").append(i).append(" = call i64 @f").append(i).append("(i64 %s").append(i).append(")\n");
            p.append("  %s").append(i + 1).append(" = add i64 %s").append(i).append(", %c").append(i).append('\n');
        }
        p.append("  ret i64 %s").append(reached).append("\n}\n\n");
        p.append("define i32 @main() {\nentry:\n  %r = call i64 @entry(i64 1)\n  %t = trunc i64 %r to i32\n  %m = and i32 %t, 127\n  ret i32 %m\n}\n\n");
        for (int i = 0; i < functions; i++) {
            p.append("define i64 @f").append(i).append("(i64 %x) {\nentry:\n");
            p.append("  %a = call i64 @rt_mix(i64 %x, i64 ").append(i).append(")\n");
            p.append("  %b = mul i64 %a, ").append(2 * i + 3).append('\n');
            p.append("  %c = xor i64 %b, %x\n");
            p.append("  %d = lshr i64 %c, 3\n");
            p.append("  %e = add i64 %d, %a\n");
            if (i >= reached && i + 1 < functions) {
                p.append("  %n = call i64 @f").append(i + 1).append("(i64 %e)\n  %r = add i64 %n, %e\n  ret i64 %r\n}\n\n");
            } else {
                p.append("  ret i64 %e\n}\n\n");
            }
        }
        Files.writeString(out.resolve("prog.ll"), p);
        Files.writeString(out.resolve("runtime.ll"), """
                define i64 @rt_mix(i64 %x, i64 %k) {
                entry:
                  %m = mul i64 %x, 6364136223846793005
                  %a = add i64 %m, %k
                  %s = lshr i64 %a, 17
                  %r = xor i64 %a, %s
                  ret i64 %r
                }
                """);
    }
}
