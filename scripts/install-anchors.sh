#!/usr/bin/env bash
# Installs what the side-by-side comparisons (scripts/compare-*.sh) build and run against, from
# Debian: LLVM 19's headers and library (llvm-19-dev: StackMapParser.h), Boehm GC (libgc-dev),
# libunwind (libunwind-dev), a C/C++ compiler and /usr/bin/time. Does nothing when all are present.
set -euo pipefail
"$(dirname "$0")/install-llvm.sh"
missing=()
for package in llvm-19-dev libgc-dev libunwind-dev g++ gcc time; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-anchors: installing ${missing[*]} with apt-get" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
