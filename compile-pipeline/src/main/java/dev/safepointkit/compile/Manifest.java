package dev.safepointkit.compile;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a warm start needs to know of a source without parsing it: the object that holds its data,
 * and for each function it defines the object compiled for it (when one was) and the functions
 * whose bodies that object inlined. Kept in the object cache under a key of the source's bytes and
 * the settings. A plain text payload, one line per item:
 * <pre>
 *   data KEY|-
 *   function NAME KEY|- INLINED,...|-
 * </pre>
 * Not thread safe: the pipeline's lock guards each instance.
 */
final class Manifest {
    /** What is known of one function: its object's key and the functions it inlined. */
    record Entry(Optional<String> objectKey, Set<String> inlined) {}

    Optional<String> dataKey = Optional.empty();
    final Map<String, Entry> functions = new LinkedHashMap<>();

    /** Whether every name survives the line format: no space, comma or line break in any. */
    boolean encodable() {
        for (Map.Entry<String, Entry> e : functions.entrySet()) {
            if (!plain(e.getKey()) || !e.getValue().inlined().stream().allMatch(Manifest::plain)) {
                return false;
            }
        }
        return true;
    }

    private static boolean plain(String name) {
        return !name.isEmpty() && name.chars().noneMatch(c -> c == ' ' || c == ',' || c == '\n' || c == '\r');
    }

    byte[] encode() {
        StringBuilder out = new StringBuilder();
        out.append("data ").append(dataKey.orElse("-")).append('\n');
        functions.forEach((name, e) -> out.append("function ").append(name).append(' ').append(e.objectKey().orElse("-"))
                .append(' ').append(e.inlined().isEmpty() ? "-" : String.join(",", e.inlined())).append('\n'));
        return out.toString().getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Reads an encoded manifest.
     *
     * @throws IllegalArgumentException naming the line that is not one of the two forms
     */
    static Manifest decode(byte[] payload) {
        Manifest m = new Manifest();
        List<String> lines = new ArrayList<>(new String(payload, StandardCharsets.UTF_8).lines().toList());
        for (int i = 0; i < lines.size(); i++) {
            String[] f = lines.get(i).split(" ");
            if (f.length == 2 && f[0].equals("data")) {
                m.dataKey = key(f[1]);
            } else if (f.length == 4 && f[0].equals("function")) {
                Set<String> inlined = new TreeSet<>();
                if (!f[3].equals("-")) {
                    inlined.addAll(List.of(f[3].split(",")));
                }
                m.functions.put(f[1], new Entry(key(f[2]), inlined));
            } else {
                throw new IllegalArgumentException("manifest line " + (i + 1) + " is not 'data KEY' or 'function NAME KEY INLINED'");
            }
        }
        return m;
    }

    private static Optional<String> key(String field) {
        return field.equals("-") ? Optional.empty() : Optional.of(field);
    }
}
