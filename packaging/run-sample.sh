#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install what Lumen needs, build it (release),
# and run it on the bundled sample study.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/install-deps.sh
cmake --preset release
cmake --build --preset release
sample=resources/sample/ct-head-sinus
build/release/app/lumen-cli info "$sample"
