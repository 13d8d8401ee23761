#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install what Lumen needs, build it (release),
# and open the bundled sample study in the workstation.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/install-deps.sh
cmake --preset release
cmake --build --preset release
sample=resources/sample/ct-head-sinus
if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
  echo "run-sample: no display; describing the sample with lumen-cli instead of opening the GUI"
  exec build/release/app/lumen-cli info "$sample"
fi
exec build/release/app/lumen "$sample"
