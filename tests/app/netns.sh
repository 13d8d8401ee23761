#!/bin/sh
# Runs a command in private network and mount namespaces: the tests' servers (Orthanc,
# Lumen's listener, dcmtk's tools) see only their own loopback, nothing outside can reach
# them, and a test may mount a small file system without touching the machine's.
# Needs root (or user namespaces); without them, or without Orthanc, the test is skipped (77).
set -eu
command -v Orthanc >/dev/null 2>&1 || { echo "skipped: Orthanc is not installed (packaging/install-deps.sh)"; exit 77; }
command -v storescu >/dev/null 2>&1 || { echo "skipped: dcmtk's tools are not installed"; exit 77; }
if ! unshare -n -m true 2>/dev/null; then
  echo "skipped: cannot create a private network namespace here (needs root)"
  exit 77
fi
exec unshare -n -m --propagation private sh -c 'ip link set lo up && exec "$@"' netns "$@"
