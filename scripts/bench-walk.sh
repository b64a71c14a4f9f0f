#!/usr/bin/env bash
# Walk and scan a real 10,000-frame JIT stack with four roots per frame (StackWalkBenchmark):
# scan reads every root slot, relocate rewrites each through RootRelocator.
#
#   scripts/bench-walk.sh [JMH OPTIONS...]       about 1 minute on 2 cores
#
# Writes target/bench/walk.json and prints the median and spread per walk of 10,002 frames
# (divide by 10,002 for a frame, by 40,008 for a root).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ] && [ -z "${JAVA_HOME:-}" ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
cd "$root"
mkdir -p target/bench
./mvnw -q -DskipTests -pl stress -am install
"$JAVA_HOME/bin/java" -jar stress/target/benchmarks.jar 'StackWalkBenchmark' -prof gc \
  -rf json -rff "$root/target/bench/walk.json" "$@"
# JMH exits 0 when a benchmark's setup fails; an empty result is a failure here.
grep -q '"primaryMetric"' "$root/target/bench/walk.json" || { echo "bench-walk: no results (see the log above)" >&2; exit 1; }
"$JAVA_HOME/bin/java" scripts/JmhSummary.java "$root/target/bench/walk.json" | grep -v -e 'gc.count' -e 'gc.time' -e 'alloc.rate '
