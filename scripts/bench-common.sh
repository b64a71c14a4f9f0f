# Sourced by the scripts/bench-*.sh scripts: selects JDK 25, builds the benchmarks jar, and gives
# jmh, which runs one JMH benchmark class and prints its summary.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ] && [ -z "${JAVA_HOME:-}" ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
cd "$root"
bench=$root/target/bench
mkdir -p "$bench"
./mvnw -q -DskipTests -pl stress -am package

# jmh CLASS NAME [JMH OPTIONS...]: runs CLASS with -prof gc, writes target/bench/NAME.json, and
# prints the median, minimum and maximum of every metric but the GC counters.
jmh() {
  local class=$1 name=$2
  shift 2
  "$JAVA_HOME/bin/java" -jar stress/target/benchmarks.jar "$class" -prof gc -rf json -rff "$bench/$name.json" "$@"
  # JMH exits 0 when a benchmark's setup fails; an empty result is a failure here.
  grep -q '"primaryMetric"' "$bench/$name.json" || { echo "$name: no results (see the log above)" >&2; exit 1; }
  "$JAVA_HOME/bin/java" scripts/JmhSummary.java "$bench/$name.json" | grep -v -e 'gc.count' -e 'gc.time' -e 'alloc.rate '
}
