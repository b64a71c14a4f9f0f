#!/usr/bin/env bash
# Runs the jcstress tests of the stress module and fails when any test fails or errs, or when
# none ran (jcstress itself exits 0 either way).
#
#   scripts/jcstress.sh [MODE] [JCSTRESS OPTIONS...]    MODE: sanity (default, seconds per test;
#                                                       what ./mvnw verify runs), quick, default,
#                                                       tough (minutes to hours)
# JCSTRESS_TESTS narrows the tests (a regex; default all of dev.safepointkit.stress).
# Needs stress/target/jcstress.jar (./mvnw -DskipTests install). JAVA, else JAVA_HOME's java.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-sanity}
[ $# -gt 0 ] && shift
java=${JAVA:-${JAVA_HOME:+$JAVA_HOME/bin/java}}
java=${java:-/usr/lib/jvm/temurin-25-jdk-amd64/bin/java}
jar=$root/stress/target/jcstress.jar
[ -f "$jar" ] || { echo "jcstress: $jar is missing; run ./mvnw -DskipTests install first" >&2; exit 1; }
out=$root/stress/target/jcstress-$mode
rm -rf "$out"
mkdir -p "$out"
cd "$out"
"$java" -jar "$jar" -m "$mode" -t "${JCSTRESS_TESTS:-dev\.safepointkit\.stress\..*}" -r "$out/results" "$@" 2>&1 | tee "$out/output.txt"

summary=$(grep -E '^\(Results: ' "$out/output.txt" | tail -n 1 || true)
echo "jcstress ($mode): ${summary:-no results}"
passed=$(sed -nE 's/.* ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) soft errs, ([0-9]+) hard errs.*/\1/p' <<<"$summary")
bad=$(sed -nE 's/.* ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) soft errs, ([0-9]+) hard errs.*/\2 \3 \4/p' <<<"$summary")
if [ -z "$passed" ] || [ "$passed" -eq 0 ]; then
  echo "jcstress: no test ran" >&2
  exit 1
fi
for n in $bad; do
  if [ "$n" -ne 0 ]; then
    echo "jcstress: failures or errors; see $out/results/index.html" >&2
    exit 1
  fi
done
if ! grep -qx '  Failed tests: No matches.' "$out/output.txt" || ! grep -qx '  Error tests: No matches.' "$out/output.txt"; then
  echo "jcstress: failed or erroring tests are listed above" >&2
  exit 1
fi
echo "jcstress: $passed passed"
