#!/bin/sh
# run-if-data.sh DIR COMMAND...: runs COMMAND when the optional data folder DIR exists; exits
# 77 (which CTest reports as skipped, by name, in its summary) when it does not.
dir=$1; shift
if [ ! -d "$dir" ]; then
  echo "skipped: optional data not found at $dir"
  exit 77
fi
exec "$@"
