#!/usr/bin/env bash
# deps.sh: installs the Debian packages the build, tests and benchmarks need, and nothing
# when all are present. Idempotent; says what it does. Used by `make deps` (and so by
# `make`, `make test`); `deps.sh fuzz` (make fuzz) adds clang 14, its libFuzzer and sanitizer
# runtimes (only recommended by clang-14, so absent where recommends are off) and its OpenMP.
set -euo pipefail
packages=(g++ make libgtest-dev libbenchmark-dev libopenblas0-openmp zlib1g-dev libpng-dev libjpeg62-turbo-dev libfmt-dev dataset-fashion-mnist ruby-gemojione)
if [ "${1:-}" = fuzz ]; then packages+=(clang-14 libclang-rt-14-dev libomp-14-dev); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "deps: not root and no sudo; install them by hand: apt-get install ${missing[*]}" >&2; exit 1
  fi
else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
echo "deps: done"
