#!/usr/bin/env bash
# Safepoint lookup, registry against ConcurrentHashMap<Long, ...> and JCTools NonBlockingHashMapLong
# in the same JMH run: 1,000 / 100,000 / 1,000,000 safepoints, hits and misses, alone and with a
# concurrent writer (-prof gc for allocation per lookup); then the HdrHistogram distribution of
# single lookups under a writer (LookupLatency).
#
#   scripts/bench-lookup.sh [JMH OPTIONS...]       about 10 minutes on 2 cores
#
# Writes target/bench/lookup.json and prints medians and spread of every metric.
source "$(dirname "$0")/bench-common.sh"
jmh LookupBenchmark lookup "$@"
"$JAVA_HOME/bin/java" -Xmx4g -cp stress/target/benchmarks.jar dev.safepointkit.stress.registry.LookupLatency 1000000 10
