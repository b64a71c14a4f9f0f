#!/usr/bin/env bash
# Fuzzes with Jazzer, one target after the other, each for a fixed time, starting from its
# committed seed corpus:
#   sectionBytes    StackMapFuzzTest#sectionBytes  (stackmap-parser) the stack map parser
#   elfBytes        StackMapFuzzTest#elfBytes      (stackmap-parser) the ELF reader
#   objectBytes     StackMapFuzzTest#objectBytes   (stackmap-parser) the Mach-O and COFF readers
#   loadsOrRefuses  JitHostFuzzTest#loadsOrRefuses (jit-host)        JitHost.load: ELF reader, checks, linker
# Findings (crashing inputs) are written to <module>/src/test/resources/<package>/<Class>Inputs/<target>/,
# where the next ./mvnw verify replays them; the generated corpus goes to <module>/.cifuzz-corpus/.
#
#   scripts/fuzz.sh [DURATION] [TARGET...]   DURATION per target, e.g. 30s, 10m, 1h (default 5m);
#                                            TARGETs as above (default: all of them)
#   FUZZ_EXECUTIONS=N scripts/fuzz.sh ...    also stop each target after N executions, whichever
#                                            comes first
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-5m}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(sectionBytes elfBytes objectBytes loadsOrRefuses)
fi
if [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ] && [ -z "${JAVA_HOME:-}" ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi

# target -> module, test (Class#method), extra Jazzer options
module_of() {
  case "$1" in
    sectionBytes|elfBytes|objectBytes) echo stackmap-parser ;;
    loadsOrRefuses) echo jit-host ;;
    *) echo "fuzz: unknown target '$1' (known: sectionBytes elfBytes objectBytes loadsOrRefuses)" >&2; return 1 ;;
  esac
}
test_of() {
  case "$1" in
    sectionBytes|elfBytes|objectBytes) echo "StackMapFuzzTest#$1" ;;
    loadsOrRefuses) echo "JitHostFuzzTest#$1" ;;
  esac
}
options_of() {
  case "$1" in
    # The loader's input runs through the ELF reader in stackmap-parser first: instrument it too.
    loadsOrRefuses) echo "-Djazzer.instrument=dev.safepointkit.**" ;;
  esac
}

modules=()
for target in "${targets[@]}"; do
  m=$(module_of "$target")
  [[ " ${modules[*]} " == *" $m "* ]] || modules+=("$m")
done
cd "$root"
./mvnw -q -DskipTests -pl "$(IFS=,; echo "${modules[*]}")" -am install
status=0
for target in "${targets[@]}"; do
  module=$(module_of "$target")
  limits=(-Djazzer.max_duration="$duration")
  if [ -n "${FUZZ_EXECUTIONS:-}" ]; then
    limits+=(-Djazzer.max_executions="$FUZZ_EXECUTIONS")
  fi
  echo "fuzz: $(test_of "$target") for $duration${FUZZ_EXECUTIONS:+ or $FUZZ_EXECUTIONS executions}" >&2
  # shellcheck disable=SC2046 # options_of yields whole options, none with spaces
  JAZZER_FUZZ=1 ./mvnw -pl "$module" surefire:test -Dtest="$(test_of "$target")" "${limits[@]}" $(options_of "$target") 2>&1 \
    | tee "$module/target/fuzz-$target.log" \
    | grep -E '^#[0-9]+.*(DONE|pulse|NEW)|Done [0-9]+ runs|== Java Exception|Tests run:|FAIL' | tail -n 5 || true
  grep -q 'Tests run: .*Failures: 0, Errors: 0' "$module/target/fuzz-$target.log" || status=1
done
exit $status
