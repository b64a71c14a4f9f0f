#!/usr/bin/env bash
# Installs from Debian what the side-by-side comparisons (scripts/compare-*.sh) build and run
# against, when any of it is missing: LLVM 19's headers and the libLLVM link they link with
# (llvm-19-dev: StackMapParser.h, /usr/lib/llvm-19/lib/libLLVM.so), Boehm GC (libgc-dev),
# libunwind (libunwind-dev), a C/C++ compiler and /usr/bin/time. Each file the scripts use is
# checked, not only a package name; nothing is done when all are present.
set -euo pipefail
"$(dirname "$0")/install-llvm.sh"
. "$(dirname "$0")/apt-files.sh"
apt_files install-anchors \
  /usr/lib/llvm-19/include/llvm/Object/StackMapParser.h=llvm-19-dev \
  /usr/lib/llvm-19/lib/libLLVM.so=llvm-19-dev \
  /usr/include/gc.h=libgc-dev \
  "/usr/lib/$multiarch/libgc.so=libgc-dev" \
  "/usr/include/$multiarch/libunwind.h=libunwind-dev" \
  "/usr/lib/$multiarch/libunwind.so=libunwind-dev" \
  /usr/bin/gcc=gcc \
  /usr/bin/g++=g++ \
  /usr/bin/time=time
