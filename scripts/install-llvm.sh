#!/usr/bin/env bash
# Installs LLVM 19 and lld 19 from Debian when they are missing; does nothing when present.
# The tests that compare with LLVM live and regenerate fixtures need llc-19, llvm-readobj-19
# and ld.lld-19. Needs root (or sudo) only when something is missing.
set -euo pipefail

missing=()
for tool in llc-19 llvm-readobj-19 ld.lld-19; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-llvm: missing ${missing[*]}; installing llvm-19 lld-19 with apt-get" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends llvm-19 lld-19
