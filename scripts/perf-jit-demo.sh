#!/usr/bin/env bash
# Shows perf naming JIT-compiled frames: runs fib(38), twice, from fixtures/jit/x86_64/math.o in the
# JIT host under `perf record`, with the jitdump listener attached, injects the jitdump into
# the profile and prints the top of `perf report`. Exits 0 when the report names fib inside the
# jitted code, 1 when it does not. Needs linux-perf (apt-get install linux-perf) and a kernel that
# lets this user sample (kernel.perf_event_paranoid <= 2).
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
perf report -i "$out/perf.jit.data" --stdio --sort dso,sym 2>/dev/null | grep -v -e '^#' -e '^$' >"$out/report.txt" || true
# Printed from a file, so that head closing its input early fails no pipeline.
head -n 12 "$out/report.txt"
if grep -qE 'jitted-[0-9]+-[0-9]+\.so +\[\.\] fib$' "$out/report.txt"; then
  echo "perf-jit-demo: perf names fib in the jitted code" >&2
else
  echo "perf-jit-demo: perf's report does not name fib in jitted code (see $out/report.txt)" >&2
  exit 1
fi
