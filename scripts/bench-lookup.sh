#!/usr/bin/env bash
# Safepoint lookup, registry against ConcurrentHashMap<Long, ...> and JCTools NonBlockingHashMapLong
# in the same JMH run: 1,000 / 100,000 / 1,000,000 safepoints, hits and misses, alone and with a
# concurrent writer (-prof gc for allocation per lookup); then the HdrHistogram distribution of
# single lookups under a writer (LookupLatency).
#
#   scripts/bench-lookup.sh [JMH OPTIONS...]       about 10 minutes on 2 cores
#
# Writes target/bench/lookup.json and prints medians and spread of every metric.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ] && [ -z "${JAVA_HOME:-}" ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
cd "$root"
mkdir -p target/bench
./mvnw -q -DskipTests -pl stress -am install
"$JAVA_HOME/bin/java" -jar stress/target/benchmarks.jar 'LookupBenchmark' -prof gc \
  -rf json -rff "$root/target/bench/lookup.json" "$@"
"$JAVA_HOME/bin/java" scripts/JmhSummary.java "$root/target/bench/lookup.json" | grep -v -e 'gc.count' -e 'gc.time' -e 'alloc.rate '
"$JAVA_HOME/bin/java" -Xmx4g -cp stress/target/benchmarks.jar dev.safepointkit.stress.registry.LookupLatency 1000000 10
