#!/usr/bin/env bash
# The Debian package, as a user gets it: built from this build, checked (contents,
# dependencies, lintian, desktop entry), installed with apt, run from /usr/bin (lumen-cli
# and the GUI under Xvfb), then purged, leaving nothing behind.
#
# usage: test_deb.sh BUILD_DIR SAMPLE_DIR CHECK_SCREENSHOT_PY
# Needs root (apt). Exit 77 (skipped) without root, or when a lumen package that this test
# did not install is present (it would be replaced).
set -euo pipefail
build=$1 sample=$2 check=$3
src=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $(id -u) -ne 0 ]]; then echo "SKIP: installing a package needs root"; exit 77; fi
fail() { echo "FAIL: $*" >&2; exit 1; }
# A stamp says this test installed the package: a run killed before its purge (a timeout)
# is cleaned up by the next run instead of turning it into a skip.
stamp=$build/package-test-installed
if dpkg-query -W -f='${Status}' lumen 2>/dev/null | grep -q "install ok installed"; then
  if [[ -f $stamp ]]; then
    apt-get purge -y -qq lumen >/dev/null || fail "cannot purge the package a killed run left"
  else
    echo "SKIP: a lumen package is installed on this machine; not replacing it"; exit 77
  fi
fi
command -v lintian >/dev/null || fail "lintian is not installed (packaging/install-deps.sh)"
arch=$(dpkg --print-architecture)
plugins=/usr/lib/$(gcc -print-multiarch)/lumen

deb=$("$src/packaging/build-deb.sh" --build-dir "$build" | tail -n1)
[[ -f $deb ]] || fail "no package built"
[[ $(basename "$deb") =~ ^lumen_[0-9.]+_${arch}\.deb$ ]] || fail "package name $(basename "$deb")"
echo "built $deb ($(du -h "$deb" | cut -f1)); lintian: clean"

# ---- contents ----
files=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
for want in /usr/bin/lumen /usr/bin/lumen-cli $plugins/liblumen_cli_ai.so $plugins/liblumen_cli_report.so $plugins/liblumen_gui_ai.so \
            /usr/share/lumen/models/mr_brain_extract/configs/metadata.json /usr/share/lumen/models/mr_brain_extract/models/model.ts \
            /usr/share/lumen/models/ct_denoise/README.md /usr/share/lumen/models/ct_dose_grade/configs/inference.json \
            /usr/share/man/man1/lumen.1.gz /usr/share/man/man1/lumen-cli.1.gz /usr/share/applications/lumen.desktop \
            /usr/share/icons/hicolor/scalable/apps/lumen.svg /usr/share/mime/packages/lumen.xml \
            /usr/share/doc/lumen/copyright /usr/share/doc/lumen/changelog.gz; do
  grep -qx "$want" <<<"$files" || fail "$want is not in the package"
done
# Nothing Debian provides is bundled: the only shared objects are Lumen's plug-ins;
# no headers, static libraries or test programs.
so=$(grep -E '\.so(\.|$)' <<<"$files" | sort | tr '\n' ' ')
[[ $so == "$plugins/liblumen_cli_ai.so $plugins/liblumen_cli_report.so $plugins/liblumen_gui_ai.so " ]] || fail "shared objects: $so"
if grep -E '\.(a|h|hpp)$|/include/|_tests$' <<<"$files"; then fail "build artefacts in the package"; fi
# Dependencies computed by dpkg-shlibdeps, plus the Qt platform plug-ins.
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libtorch libqt6widgets6 libvtk9 libdcmtk libc6 qt6-qpa-plugins; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
desktop-file-validate "$src/packaging/deb/lumen.desktop" || fail "desktop-file-validate"

# ---- install with apt, run from /usr/bin ----
cleanup() { apt-get purge -y -qq lumen >/dev/null 2>&1 && rm -f "$stamp"; }
trap cleanup EXIT
touch "$stamp"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$(realpath "$deb")" >/dev/null \
  || fail "apt-get install"
[[ $(command -v lumen-cli) == /usr/bin/lumen-cli ]] || fail "lumen-cli is not /usr/bin/lumen-cli"
work=$(mktemp -d)
# A clean environment: no LUMEN_* variable, a fresh home: the package finds its own files.
run() { env -i HOME="$work/home" PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"; }
mkdir -p "$work/home"
run lumen-cli --version | grep -qx "lumen-cli $(dpkg-deb -f "$deb" Version)" || fail "lumen-cli --version"
run lumen-cli info "$sample" >"$work/info.txt" || fail "lumen-cli info on the sample"
head -n 3 "$work/info.txt"
grep -q "CT" "$work/info.txt" || fail "lumen-cli info on the sample: no CT volume"
run lumen-cli models --json >"$work/models.json" || fail "lumen-cli models"
python3 - "$work/models.json" <<'PY' || fail "the shipped models are not found in /usr/share/lumen/models"
import json, sys
models = json.load(open(sys.argv[1]))["models"]
names = {m["name"]: m for m in models}
for n in ("ct_denoise", "ct_dose_grade", "mr_brain_extract"):
    assert n in names, f"{n} missing: {sorted(names)}"
    assert names[n]["folder"].startswith("/usr/share/lumen/models/"), names[n]["folder"]
    assert names[n]["trust"] == "shipped", names[n]["trust"]
print("shipped models found:", ", ".join(sorted(names)))
PY
# The GUI with its AI plug-in and a shipped model (--run-model fails when either is missing).
run xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb LIBGL_ALWAYS_SOFTWARE=1 \
  /usr/bin/lumen --no-settings --data-dir "$work/data" --run-model ct_dose_grade --screenshot "$work/shot.png" "$sample" \
  || fail "lumen --run-model ct_dose_grade --screenshot"
/usr/bin/python3 "$check" "$work/shot.png" 1x1 || fail "the installed GUI's screenshot"
# Desktop integration is registered by the system's triggers.
grep -q "application/dicom=.*lumen.desktop" /usr/share/applications/mimeinfo.cache || fail "application/dicom not associated"
grep -q "application/dicom:DICOMDIR" /usr/share/mime/globs2 || fail "DICOMDIR glob not registered"

# ---- remove: nothing left ----
trap - EXIT
apt-get purge -y -qq lumen >/dev/null || fail "apt-get purge"
rm -f "$stamp"
left=()
while read -r f; do
  [[ -z $f || $f == */ ]] && continue
  [[ -e $f ]] && left+=("$f")
done <<<"$files"
for d in $plugins /usr/share/lumen /usr/share/doc/lumen; do [[ -e $d ]] && left+=("$d"); done
[[ ${#left[@]} -eq 0 ]] || fail "left behind after purge: ${left[*]}"
grep -q "lumen.desktop" /usr/share/applications/mimeinfo.cache 2>/dev/null && fail "mimeinfo.cache still names lumen.desktop"
rm -rf "$work"
echo "package ok: built, checked, installed, run, purged"
