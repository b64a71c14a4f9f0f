#!/usr/bin/env bash
# Load + link time of the JIT host, with JMH: a typical fixture (fixtures/jit/x86_64/math.o)
# and a generated object of 1,000 functions with 10 stack map call sites each (llc-19 output).
#
#   scripts/bench-load.sh [JMH OPTIONS...]
#
# Writes target/bench/load.json and prints the median and spread of each metric.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ] && [ -z "${JAVA_HOME:-}" ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
cd "$root"
generated=$root/target/bench/functions-1000
[ -f "$generated/large.o" ] || scripts/gen-large-stackmap.sh "$generated" 1000 10
./mvnw -q -DskipTests -pl stress -am install
"$JAVA_HOME/bin/java" -jar stress/target/benchmarks.jar LoadBenchmark \
  -p object="$root/fixtures/jit/x86_64/math.o,$generated/large.o" -prof gc \
  -rf json -rff "$root/target/bench/load.json" "$@"
"$JAVA_HOME/bin/java" scripts/JmhSummary.java "$root/target/bench/load.json"
