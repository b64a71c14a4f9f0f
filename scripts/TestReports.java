import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * Reads every Surefire and Failsafe report (TEST-*.xml) under the given directories and prints
 * one line: "Tests: N passed, N failed, N skipped". Exits 1 when a test failed or erred,
 * when no test ran at all, or, with --no-skips, when any test was skipped, naming each such test.
 * CI runs it with --no-skips after the build: a test that may skip on a user's machine must run
 * in CI. Usage: {@code java scripts/TestReports.java [--no-skips] DIR...}
 */
public class TestReports {

    public static void main(String[] args) throws Exception {
        boolean noSkips = args.length > 0 && args[0].equals("--no-skips");
        List<Path> reports = new ArrayList<>();
        for (int i = noSkips ? 1 : 0; i < args.length; i++) {
            reports.addAll(reportsUnder(Path.of(args[i])));
        }
        int passed = 0;
        List<String> failed = new ArrayList<>();
        List<String> skipped = new ArrayList<>();
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        for (Path report : reports) {
            NodeList cases = factory.newDocumentBuilder().parse(report.toFile()).getElementsByTagName("testcase");
            for (int i = 0; i < cases.getLength(); i++) {
                Element c = (Element) cases.item(i);
                String name = c.getAttribute("classname") + "#" + c.getAttribute("name");
                if (has(c, "failure") || has(c, "error")) {
                    failed.add(name);
                } else if (has(c, "skipped")) {
                    String why = ((Element) c.getElementsByTagName("skipped").item(0)).getAttribute("message");
                    skipped.add(name + (why.isEmpty() ? "" : ": " + why));
                } else {
                    passed++;
                }
            }
        }
        System.out.printf("Tests: %d passed, %d failed, %d skipped%n", passed, failed.size(), skipped.size());
        failed.forEach(name -> System.out.println("  failed: " + name));
        skipped.forEach(name -> System.out.println("  skipped: " + name));
        int total = passed + failed.size() + skipped.size();
        if (total == 0) {
            System.out.println("no test reports found: no test ran");
        }
        if (noSkips && !skipped.isEmpty()) {
            System.out.println("a test was skipped; in CI every test must run");
        }
        System.exit(!failed.isEmpty() || total == 0 || (noSkips && !skipped.isEmpty()) ? 1 : 0);
    }

    private static boolean has(Element testcase, String child) {
        return testcase.getElementsByTagName(child).getLength() > 0;
    }

    private static List<Path> reportsUnder(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(f -> f.getFileName().toString().matches("TEST-.*\\.xml"))
                    .filter(f -> f.getParent().getFileName().toString().matches("(surefire|failsafe)-reports"))
                    .sorted().toList();
        }
    }
}
