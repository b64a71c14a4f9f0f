#!/usr/bin/env bash
# Every comparison of README's "Performance side by side", one after another in one run, so the
# table comes from one machine state: parse (LLVM's StackMapParser), walk (libunwind), registry
# lookups and writer (NonBlockingHashMapLong, by CPU time), time to safepoint and poll cost
# (HotSpot), the compile pipeline (lli-19). Each script's whole output goes to
# target/side-by-side/NAME.log, with the load average before and after it; the lines the table
# is made from are printed at the end.
#
#   scripts/side-by-side.sh          about 10 minutes on 2 cores
#
# Needs scripts/install-llvm.sh and scripts/install-anchors.sh. Run it on a machine doing nothing
# else: the load averages in the logs say how far that held.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
cd "$root"
out=$root/target/side-by-side
rm -rf "$out"
mkdir -p "$out"
# step NAME CMD...: runs CMD with its output in NAME.log, between two load averages.
step() {
  local name=$1
  shift
  echo "== $name: $*"
  local rc=0
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >"$out/$name.log"
  "$@" >>"$out/$name.log" 2>&1 || rc=$?
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/$name.log"
  if [ "$rc" != 0 ]; then
    echo "side-by-side: $name failed (exit $rc), see $out/$name.log" >&2
    tail -20 "$out/$name.log" >&2
    exit 1
  fi
}
jar=stress/target/benchmarks.jar
cpu_time() { "$JAVA_HOME/bin/java" -cp "$jar" dev.safepointkit.stress.registry.LookupCpuTime "$@"; }

step parse scripts/compare-parse.sh
step walk scripts/compare-walk.sh
step lookup-alone cpu_time alone
step lookup-writer cpu_time writer
step writer-alone cpu_time writer-alone 1000000 30
step ttsp scripts/bench-ttsp.sh
step compile scripts/bench-compile-pipeline.sh 7

for f in "$out"/*.log; do
  echo "---- $(basename "$f" .log)"
  grep -E -i 'load (before|after)|median|ratio|p99|overhead|ns per frame|CPU ns|CPU us|first result|orc-lazy|mcjit|eager|lazy|redefine|warm' "$f" \
    | grep -v -E '^\[|WARNING' | head -40
done
