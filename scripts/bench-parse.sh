#!/usr/bin/env bash
# Parse throughput over a large .llvm_stackmaps section of real llc-19 output (102,400 records by
# default), with JMH: MB/s and records/s for validation alone and for validation plus reading
# every field, and allocation per parse (-prof gc).
#
#   scripts/bench-parse.sh [JMH OPTIONS...]     e.g. -f 3 -i 20 for a longer run
#
# Writes target/bench/parse.json (JMH's JSON) and prints the median and spread of each metric.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ] && [ -z "${JAVA_HOME:-}" ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
cd "$root"
bench=$root/target/bench
[ -f "$bench/large.llvm_stackmaps" ] || scripts/gen-large-stackmap.sh "$bench"
./mvnw -q -DskipTests -pl stress -am install
"$JAVA_HOME/bin/java" -jar stress/target/benchmarks.jar ParseBenchmark \
  -p section="$bench/large.llvm_stackmaps" -prof gc -rf json -rff "$bench/parse.json" "$@"
"$JAVA_HOME/bin/java" scripts/JmhSummary.java "$bench/parse.json"
