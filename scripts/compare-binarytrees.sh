#!/usr/bin/env bash
# binary-trees end to end, side by side, on 2 threads:
#   safepointkit  the demo: binarytrees.ll with statepoints, on the demo's copying collector through
#                 gc-roots (bin/safepointkit demo --heap-mb 64)
#   boehm         the same binarytrees.ll without statepoints, linked against Boehm GC (libgc,
#                 conservative, non-moving): stress/src/main/native/binarytrees_boehm.c
#   java          the same program in Java on HotSpot with -XX:+UseParallelGC and its default heap:
#                 dev.safepointkit.stress.compare.JavaBinaryTrees
# Each runs ROUNDS times per depth (alternating); for each it prints the median and the spread
# (min to max) of wall time and peak RSS (/usr/bin/time, the whole process: a JVM's start-up and
# footprint included) and of the GC pause p99 (nearest rank over the run's pauses: the demo's own
# histogram, Boehm's GC_EVENT_START..END, HotSpot's -Xlog:gc pause lines).
#
#   scripts/compare-binarytrees.sh [ROUNDS] [DEPTH...]          default 5 rounds, depths 16 18
#
# Needs scripts/install-anchors.sh. Every run's output is checked line by line by the program.
source "$(dirname "$0")/bench-common.sh"
rounds=${1:-5}
shift || true
depths=${*:-16 18}
work=$bench/binarytrees
mkdir -p "$work"
command -v /usr/bin/time >/dev/null || { echo "compare-binarytrees: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -filetype=obj \
  examples/demo/src/main/llvm/binarytrees.ll -o "$work/binarytrees-plain.o"
gcc -O2 -pthread stress/src/main/native/binarytrees_boehm.c "$work/binarytrees-plain.o" -lgc -o "$work/binarytrees_boehm"
bin/safepointkit demo --depth 6 >/dev/null 2>&1   # builds the CLI once, outside the measurements

# p99 (nearest rank) of the numbers on stdin, one per line; 0 when there are none.
p99() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else { r = int(0.99 * NR + 0.999); if (r < 1) r = 1; print v[r] } }'; }

# run NAME DEPTH: one run; appends "NAME DEPTH wall_s rss_mb p99_ms collections" to $work/results.
run() {
  local name=$1 depth=$2 out=$work/$1-$2.out timing=$work/$1-$2.time p99ms collections
  case $name in
    safepointkit)
      /usr/bin/time -f "%e %M" -o "$timing" bin/safepointkit demo --depth "$depth" --threads 2 --heap-mb 64 >"$out" 2>/dev/null
      p99ms=$(sed -n 's/.*pause p50 [0-9.]* ms, p99 \([0-9.]*\) ms.*/\1/p' "$out")
      collections=$(sed -n 's/^collections: \([0-9]*\),.*/\1/p' "$out") ;;
    boehm)
      /usr/bin/time -f "%e %M" -o "$timing" "$work/binarytrees_boehm" "$depth" 2 >"$out"
      p99ms=$(sed -n 's/.*pause p50 [0-9.]* ms, p99 \([0-9.]*\) ms.*/\1/p' "$out")
      collections=$(sed -n 's/^boehm: collections: \([0-9]*\),.*/\1/p' "$out") ;;
    java)
      rm -f "$work/gc.log"
      /usr/bin/time -f "%e %M" -o "$timing" "$JAVA_HOME/bin/java" -XX:+UseParallelGC -Xlog:gc:file="$work/gc.log" \
        -cp stress/target/benchmarks.jar dev.safepointkit.stress.compare.JavaBinaryTrees "$depth" 2 >"$out"
      p99ms=$(sed -n 's/.*Pause.* \([0-9.]*\)ms$/\1/p' "$work/gc.log" | p99)
      collections=$(grep -c 'Pause' "$work/gc.log" || true) ;;
  esac
  grep -q "verified" "$out" || { echo "compare-binarytrees: $name at depth $depth: output not verified" >&2; cat "$out" >&2; exit 1; }
  read -r wall rss < "$timing"
  echo "$name $depth $wall $((rss / 1024)) $p99ms $collections" >> "$work/results"
}

rm -f "$work/results"
for depth in $depths; do
  for ((r = 1; r <= rounds; r++)); do
    for name in safepointkit boehm java; do
      run "$name" "$depth"
    done
  done
done

# median and spread of column COL for NAME at DEPTH
stat() {
  awk -v n="$1" -v d="$2" -v c="$3" '$1 == n && $2 == d { print $c }' "$work/results" | sort -g |
    awk '{ v[NR] = $1 } END { printf "%s (%s to %s)", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
printf "%-13s %5s  %-22s %-20s %-26s %s\n" program depth "wall s" "peak RSS MB" "GC pause p99 ms" "collections"
for depth in $depths; do
  for name in safepointkit boehm java; do
    printf "%-13s %5s  %-22s %-20s %-26s %s\n" "$name" "$depth" "$(stat "$name" "$depth" 3)" "$(stat "$name" "$depth" 4)" \
      "$(stat "$name" "$depth" 5)" "$(stat "$name" "$depth" 6)"
  done
done
