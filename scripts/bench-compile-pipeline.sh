#!/usr/bin/env bash
# The compile pipeline against ORC's lazy JIT, on a generated program of 1,000 functions whose
# entry reaches 10, each calling the runtime's rt_mix (scripts/GenerateCompileBench.java):
#
#   scripts/bench-compile-pipeline.sh [ROUNDS]      (default 7)
#
# 1. lli-19 --jit-kind=orc-lazy and eager lli-19 on the linked module (llvm-link-19), whole
#    process, the median of ROUNDS runs, with the spread and (through GNU time, when installed) the
#    median CPU time, user and system, which a loaded machine disturbs far less than wall time.
# 2. bin/safepointkit run --stats: eager, lazy, lazy with a cold and with a warm cache, each a
#    fresh JVM: the stats line (F is in process, from the first load) and the whole process.
# 3. In process with the JVM and libLLVM warm (CompileBench): first result eager, lazy, lazy with
#    a warm cache, and redefining one function of the 1,000 then calling entry again.
# Writes everything under target/compile-bench. Numbers on a shared 2-core machine are noisy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-7}
if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
for tool in lli-19 llvm-link-19; do
  command -v "$tool" >/dev/null || { echo "bench-compile-pipeline: $tool not found; install it with: apt-get install llvm-19" >&2; exit 1; }
done
cd "$root"
out=$root/target/compile-bench
rm -rf "$out"
mkdir -p "$out"
"$JAVA_HOME/bin/java" scripts/GenerateCompileBench.java "$out" 1000 10
llvm-link-19 -S "$out/prog.ll" "$out/runtime.ll" -o "$out/linked.ll"
./mvnw -o -q -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true -pl cli -am package
export SAFEPOINTKIT_NO_BUILD=1

# median MS...: the middle value.
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# wall CMD...: whole-process milliseconds of one run (its output discarded; lli's exit code is main's).
wall() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}

# cpu CMD...: user plus system milliseconds of one run, by GNU time; empty without it.
cpu() {
  [ -x /usr/bin/time ] || return 0
  /usr/bin/time -f '%U %S' -o "$out/time.txt" "$@" >/dev/null 2>&1 || true
  # The last line: GNU time first notes a nonzero exit status (lli's is main's) on a line of its own.
  tail -1 "$out/time.txt" | awk '{printf "%d\n", ($1 + $2) * 1000}'
}

echo "== whole process, median of $rounds (min to max), ms; CPU (user + system) median"
for kind in orc-lazy mcjit; do
  times=()
  cpus=()
  cmd=(lli-19 "$out/linked.ll")
  [ "$kind" = orc-lazy ] && cmd=(lli-19 --jit-kind=orc-lazy "$out/linked.ll")
  for _ in $(seq "$rounds"); do
    times+=("$(wall "${cmd[@]}")")
    c=$(cpu "${cmd[@]}")
    [ -n "$c" ] && cpus+=("$c")
  done
  sorted=($(printf '%s\n' "${times[@]}" | sort -n))
  printf '%-44s %6s (%s to %s)   CPU %s\n' "lli-19 ${kind/mcjit/(eager)}" "$(median "${times[@]}")" "${sorted[0]}" \
    "${sorted[-1]}" "$([ ${#cpus[@]} -gt 0 ] && median "${cpus[@]}" || echo '-')"
done
run=("$root/bin/safepointkit" run --runtime "$out/runtime.ll" --stats --call entry --arg 1)
for mode in eager lazy lazy-cold-cache lazy-warm-cache; do
  flags=()
  case $mode in
    lazy) flags=(--lazy) ;;
    lazy-cold-cache) flags=(--lazy --cache "$out/cache-cold") ;;
    lazy-warm-cache) flags=(--lazy --cache "$out/cache-warm"); "${run[@]}" "${flags[@]}" "$out/prog.ll" >/dev/null 2>&1 ;;
  esac
  times=()
  for _ in $(seq "$rounds"); do
    [ "$mode" = lazy-cold-cache ] && rm -rf "$out/cache-cold"
    times+=("$(wall "${run[@]}" "${flags[@]}" "$out/prog.ll")")
  done
  [ "$mode" = lazy-cold-cache ] && rm -rf "$out/cache-cold"
  stats=$("${run[@]}" "${flags[@]}" "$out/prog.ll" 2>&1 >/dev/null | tail -1)
  printf '%-44s %6s   %s\n' "safepointkit run ($mode)" "$(median "${times[@]}")" "$stats"
done

echo "== in process, JVM and libLLVM warm"
cp=$root/compile-pipeline/target/test-classes:$(ls "$root"/cli/target/lib/*.jar | tr '\n' ':')
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "$cp" dev.safepointkit.compile.CompileBench "$out" "$rounds"
