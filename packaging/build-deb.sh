#!/usr/bin/env bash
# Builds the Debian package lumen_<version>_amd64.deb (CPack DEB) and checks it with lintian.
#
#   packaging/build-deb.sh                  build preset release, then package it
#   packaging/build-deb.sh --build-dir DIR  package a build that exists (CI: build/dev)
#
# Prints the path of the package on its last line. Install it with
#   sudo apt install ./build/release/lumen_*_amd64.deb
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build/release
if [[ "${1:-}" == "--build-dir" ]]; then
  dir=${2:?--build-dir needs a folder}
else
  cmake --preset release
  cmake --build --preset release
fi
rm -f "$dir"/lumen_*_amd64.deb
(cd "$dir" && cpack -G DEB >cpack.log 2>&1) || { cat "$dir/cpack.log" >&2; exit 1; }
deb=$(ls "$dir"/lumen_*_amd64.deb)
if command -v lintian >/dev/null; then
  lintian --fail-on error,warning "$deb" >&2
else
  echo "build-deb: lintian is not installed (packaging/install-deps.sh installs it); package not checked" >&2
fi
echo "$deb"
