import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Prints the median, minimum and maximum of every metric in a JMH JSON result, from the raw
 * per-iteration data: {@code java scripts/JmhSummary.java target/bench/parse.json}. JMH's own
 * table has the mean and confidence interval; the project's reports quote medians and spread.
 */
public class JmhSummary {

    public static void main(String[] args) throws Exception {
        List<?> runs = (List<?>) new Reader(Files.readString(Path.of(args[0]))).value();
        System.out.printf("%-66s %12s %12s %12s  %s%n", "benchmark:metric [params]", "median", "min", "max", "unit");
        for (Object o : runs) {
            Map<?, ?> run = (Map<?, ?>) o;
            String name = ((String) run.get("benchmark")).replaceFirst("^.*\\.([^.]+\\.[^.]+)$", "$1");
            StringBuilder params = new StringBuilder();
            if (run.get("params") instanceof Map<?, ?> p) {
                p.forEach((k, v) -> {
                    // File parameters by their last two path elements: enough to tell them apart.
                    String value = ((String) v).replaceFirst("^.*/([^/]+/[^/]+)$", "$1");
                    params.append(params.isEmpty() ? " [" : ",").append(k).append('=').append(value);
                });
                if (!params.isEmpty()) {
                    params.append(']');
                }
            }
            print(name + params, (Map<?, ?>) run.get("primaryMetric"));
            if (run.get("secondaryMetrics") instanceof Map<?, ?> secondary) {
                secondary.forEach((metric, m) -> print(name + ":" + metric + params, (Map<?, ?>) m));
            }
        }
    }

    private static void print(String label, Map<?, ?> metric) {
        List<Double> values = new ArrayList<>();
        for (Object fork : (List<?>) metric.get("rawData")) {
            for (Object v : (List<?>) fork) {
                values.add(((Number) v).doubleValue());
            }
        }
        if (values.isEmpty()) {
            return;
        }
        double[] sorted = values.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(sorted);
        int n = sorted.length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        System.out.printf("%-66s %12.4g %12.4g %12.4g  %s%n", label, median, sorted[0], sorted[n - 1], metric.get("scoreUnit"));
    }

    /** Just enough JSON for JMH's output: objects, arrays, strings, numbers, literals. */
    private static final class Reader {
        private final String s;
        private int i;

        Reader(String s) {
            this.s = s;
        }

        Object value() {
            skip();
            char c = s.charAt(i);
            if (c == '{') {
                Map<String, Object> map = new LinkedHashMap<>();
                i++;
                skip();
                if (s.charAt(i) == '}') {
                    i++;
                    return map;
                }
                do {
                    skip();
                    String key = (String) value();
                    skip();
                    i++; // ':'
                    map.put(key, value());
                    skip();
                } while (s.charAt(i++) == ',');
                return map;
            }
            if (c == '[') {
                List<Object> list = new ArrayList<>();
                i++;
                skip();
                if (s.charAt(i) == ']') {
                    i++;
                    return list;
                }
                do {
                    list.add(value());
                    skip();
                } while (s.charAt(i++) == ',');
                return list;
            }
            if (c == '"') {
                StringBuilder b = new StringBuilder();
                for (i++; s.charAt(i) != '"'; i++) {
                    if (s.charAt(i) == '\\') {
                        i++;
                    }
                    b.append(s.charAt(i));
                }
                i++;
                return b.toString();
            }
            int start = i;
            while (i < s.length() && ",]} \n\r\t".indexOf(s.charAt(i)) < 0) {
                i++;
            }
            String word = s.substring(start, i);
            return switch (word) {
                case "true" -> Boolean.TRUE;
                case "false" -> Boolean.FALSE;
                case "null" -> null;
                case "\"NaN\"", "NaN" -> Double.NaN;
                default -> Double.parseDouble(word);
            };
        }

        private void skip() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }
    }
}
