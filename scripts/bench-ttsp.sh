#!/usr/bin/env bash
# Time to safepoint and the poll's cost: 1, 2 and 4 mutators spinning in the JIT loops of
# fixtures/ttsp/src/spin.ll (a poll on every back edge), stopped and released through the
# SafepointCoordinator; after each, the same loop in Java on HotSpot in a child JVM, its times
# read from -Xlog:safepoint (reaching safepoint, Thread.getAllStackTraces as the operation);
# then spin_polled against spin_plain, ns per iteration and the overhead in %.
#
#   scripts/bench-ttsp.sh [STOPS] [GAP_MICROS] [POLL_ITERATIONS]    about 2 minutes on 2 cores
#
# Writes HotSpot's logs to target/bench/ttsp/ and prints p50 / p99 / max of every time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ] && [ -z "${JAVA_HOME:-}" ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
cd "$root"
./mvnw -o -q -DskipTests -pl stress -am package
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -Dsafepointkit.root="$root" -cp stress/target/benchmarks.jar \
  dev.safepointkit.stress.ttsp.TtspBenchmark "$root/target/bench/ttsp" "$@"
