#!/usr/bin/env bash
# Shows perf naming JIT-compiled frames: runs fib(38), twice, from fixtures/jit/x86_64/math.o in the
# JIT host under `perf record`, with the jitdump listener attached, injects the jitdump into
# the profile and prints the top of `perf report`. Needs linux-perf (apt-get install linux-perf)
# and a kernel that lets this user sample (kernel.perf_event_paranoid <= 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/target/perf
rm -rf "$out"
mkdir -p "$out"
command -v perf >/dev/null || { echo "perf-jit-demo: perf not found (apt-get install linux-perf)" >&2; exit 1; }
"$root/bin/safepointkit" --version >/dev/null   # build first, outside the profile
perf record -k mono -o "$out/perf.data" -- \
  "$root/bin/safepointkit" run --perf-map --jitdump "$out" --call fib --arg 38 --repeat 2 \
  "$root/fixtures/jit/x86_64/math.o"
perf inject --jit -i "$out/perf.data" -o "$out/perf.jit.data"
perf report -i "$out/perf.jit.data" --stdio --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 12
