#!/usr/bin/env bash
# Fuzzes the stack map and ELF parsers with Jazzer, one target after the other, each for a fixed
# time, starting from the committed seed corpus. Findings (crashing inputs) are written to
# stackmap-parser/src/test/resources/dev/safepointkit/stackmap/StackMapFuzzTestInputs/<target>/,
# where the next ./mvnw verify replays them; the generated corpus goes to .cifuzz-corpus/.
#
#   scripts/fuzz.sh [DURATION]      DURATION per target, e.g. 30s, 10m, 1h (default 5m)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-5m}
if [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ] && [ -z "${JAVA_HOME:-}" ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
cd "$root"
./mvnw -q -DskipTests -pl stackmap-parser -am install
status=0
for target in sectionBytes elfBytes; do
  echo "fuzz: StackMapFuzzTest#$target for $duration" >&2
  JAZZER_FUZZ=1 ./mvnw -pl stackmap-parser surefire:test -Dtest="StackMapFuzzTest#$target" \
    -Djazzer.max_duration="$duration" 2>&1 | tee "stackmap-parser/target/fuzz-$target.log" \
    | grep -E '^#[0-9]+.*(DONE|pulse|NEW)|Done [0-9]+ runs|== Java Exception|Tests run:|FAIL' | tail -n 5 || true
  grep -q 'Tests run: .*Failures: 0, Errors: 0' "stackmap-parser/target/fuzz-$target.log" || status=1
done
exit $status
