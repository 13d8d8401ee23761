#!/usr/bin/env bash
# Builds Lumen and runs the whole test suite (what CI runs).
#   packaging/test.sh            install missing Debian packages, build (preset dev), test;
#                                then the core, imaging, fuzz-replay and CLI tests again under
#                                AddressSanitizer + UBSan (preset asan: no LibTorch, no GUI)
#   LUMEN_SKIP_DEPS=1 packaging/test.sh   do not touch packages
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${LUMEN_SKIP_DEPS:-0}" != 1 ]]; then packaging/install-deps.sh; fi
cmake --preset dev
cmake --build --preset dev
ctest --preset dev "$@"
cmake --preset asan
cmake --build --preset asan
ctest --preset asan "$@"
