#!/usr/bin/env bash
# Installs, by Debian package name, everything Lumen needs to build, test and run on
# Debian 12 (bookworm). Idempotent: packages already installed are skipped, and when
# nothing is missing apt is not touched at all.
#
#   packaging/install-deps.sh            build + runtime + test tools and evaluation data
#   packaging/install-deps.sh --data     also the training data of the reference models
#                                        (models/training)
set -euo pipefail

build=(
  build-essential cmake ninja-build ccache pkg-config git
)
libs=(
  qt6-base-dev libqt6opengl6-dev libqt6sql6-sqlite qt6-svg-dev qt6-tools-dev qt6-pdf-dev
  libvtk9-dev libinsighttoolkit5-dev libdcmtk-dev libtorch-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libtbb-dev
  libopenjp2-7-dev libcharls-dev zlib1g-dev
)
tools=(
  # independent DICOM readers/writers/validators used by tests and benchmarks
  dcmtk dcm2niix dicom3tools libgdcm-tools
  # the PACS peer of the connectivity tests (run in a private network namespace: iproute2)
  orthanc orthanc-dicomweb iproute2
  # the scheduler of the batch tests (a single-node Slurm, started by tests/app/test_batch.py)
  slurmctld slurmd slurm-client munge
  # the fuzz build (preset fuzz: libFuzzer needs clang and its runtime)
  clang llvm libclang-rt-14-dev
  # PDF reports: their text and pages, as a reader sees them (pdftotext, pdftoppm)
  poppler-utils
  # GUI tests: a real X server with software OpenGL
  xvfb xauth libgl1-mesa-dri
  # the Debian package's checks (packaging/build-deb.sh, tests/packaging/test_deb.sh)
  lintian desktop-file-utils shared-mime-info
  # Debian's Python (/usr/bin/python3) with the libraries the test scripts use
  python3 python3-pydicom python3-gdcm python3-pil python3-numpy python3-nibabel python3-torch python3-scipy
  python3-skimage python3-imageio python3-matplotlib
  # held-out data the shipped models are evaluated on (tests: model_eval_*)
  insighttoolkit5-examples invesalius-examples
)
data=(
  # training data of the reference models (models/training)
  mricron-data
)

want=("${build[@]}" "${libs[@]}" "${tools[@]}")
if [[ "${1:-}" == "--data" ]]; then want+=("${data[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#want[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Orthanc is only a test peer: the tests start their own, in a private network namespace.
# Debian's package starts a system service listening on every interface; stop it.
if [[ " ${missing[*]} " == *" orthanc "* ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  $SUDO systemctl disable --now orthanc >/dev/null 2>&1 || true
fi
