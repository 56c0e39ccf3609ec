#!/usr/bin/env bash
# Copyright 2026 rk_yolo_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
#
# Set up the rknn-toolkit2 environment that `rk-yolo convert` runs its build job in.
#
# rknn-toolkit2 pins old numpy/protobuf/onnx and needs torch and setuptools<70, so it gets its
# own virtual environment, apart from the one rk_yolo_ros runs in. Idempotent: a second run
# checks the environment and exits. Usage:
#
#   scripts/setup_rknn_toolkit.sh [--with-ultralytics] [--force]
#
# Environment variables:
#   RK_YOLO_RKNN_ENV      where the venv goes (default ~/.cache/rk_yolo_ros/rknn-toolkit2-venv)
#   RK_YOLO_RKNN_PYTHON   a CPython 3.8-3.12 matching a toolkit wheel (default: python3.11, python3)
#   RKNN_TOOLKIT_VERSION  rknn-toolkit2 release (default 2.5.0)
#   RK_YOLO_TORCH_VERSION torch release (default 2.13.0, the CPU wheel; never a CUDA build)
#   RK_YOLO_TORCH_INDEX   extra pip index holding CPU torch wheels, where pip has none locally
#   RK_YOLO_TORCHVISION_PIN  torchvision requirement for --with-ultralytics (default ==0.28.0)
set -euo pipefail

ENV_DIR="${RK_YOLO_RKNN_ENV:-${HOME}/.cache/rk_yolo_ros/rknn-toolkit2-venv}"
TOOLKIT_VERSION="${RKNN_TOOLKIT_VERSION:-2.5.0}"
TORCH_VERSION="${RK_YOLO_TORCH_VERSION:-2.13.0}"
# torchvision releases pin one torch release each (0.28.0 <-> torch 2.13.0).
TORCHVISION_PIN="${RK_YOLO_TORCHVISION_PIN:-==0.28.0}"
WITH_ULTRALYTICS=0
FORCE=0
for arg in "$@"; do
  case "${arg}" in
    --with-ultralytics) WITH_ULTRALYTICS=1 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '16,30p' "$0"; exit 0 ;;
    *) echo "setup_rknn_toolkit.sh: unknown option '${arg}' (expected --with-ultralytics, --force)" >&2
       exit 2 ;;
  esac
done

say() { echo "[setup_rknn_toolkit] $*"; }

PYTHON="${RK_YOLO_RKNN_PYTHON:-}"
if [ -z "${PYTHON}" ]; then
  for candidate in python3.11 /usr/bin/python3 python3; do
    if command -v "${candidate}" >/dev/null 2>&1; then PYTHON="$(command -v "${candidate}")"; break; fi
  done
fi
if [ -z "${PYTHON}" ]; then
  echo "setup_rknn_toolkit.sh: no python3 found; set RK_YOLO_RKNN_PYTHON" >&2; exit 1
fi
PY_TAG="$("${PYTHON}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "${PY_TAG}" in
  3.8|3.9|3.10|3.11|3.12) ;;
  *) echo "setup_rknn_toolkit.sh: ${PYTHON} is Python ${PY_TAG}; rknn-toolkit2 ${TOOLKIT_VERSION}" \
          "has wheels for 3.8-3.12 only; set RK_YOLO_RKNN_PYTHON" >&2; exit 1 ;;
esac
if [ "$(uname -m)" != "x86_64" ]; then
  say "warning: rknn-toolkit2 ships x86_64 host wheels (aarch64 ones exist for some releases);" \
      "on the board itself use rknn-toolkit-lite2 and 'rk-yolo verify'"
fi

STAMP="${ENV_DIR}/.rk_yolo_toolkit_stamp"
WANT_STAMP="rknn-toolkit2==${TOOLKIT_VERSION} torch==${TORCH_VERSION} ultralytics=${WITH_ULTRALYTICS}"
if [ "${FORCE}" = 0 ] && [ -f "${STAMP}" ] && [ "$(cat "${STAMP}")" = "${WANT_STAMP}" ] \
   && "${ENV_DIR}/bin/python" -c 'from rknn.api import RKNN' >/dev/null 2>&1; then
  say "already set up: ${ENV_DIR} (${WANT_STAMP}); pass --force to rebuild"
  exit 0
fi

START=$(date +%s)
if [ "${FORCE}" = 1 ] && [ -d "${ENV_DIR}" ]; then
  say "removing ${ENV_DIR} (--force)"
  rm -rf "${ENV_DIR}"
fi
say "creating venv ${ENV_DIR} with ${PYTHON} (Python ${PY_TAG})"
mkdir -p "$(dirname "${ENV_DIR}")"
"${PYTHON}" -m venv "${ENV_DIR}"
PIP=("${ENV_DIR}/bin/python" -m pip --disable-pip-version-check)

# The toolkit's own metadata asks for torch<=2.4.0, which on PyPI means a multi-GB CUDA build;
# the conversion path runs fine on a current CPU-only torch. So the toolkit is installed with
# --no-deps and its requirements are installed below under these pins.
CONSTRAINTS="${ENV_DIR}/rk_yolo_constraints.txt"
cat > "${CONSTRAINTS}" <<PINS
numpy==1.26.4
protobuf==4.25.4
onnx==1.17.0
onnxruntime==1.19.2
opencv-python-headless==4.10.0.84
PINS
say "pins: $(tr '\n' ' ' < "${CONSTRAINTS}")"

say "installing torch==${TORCH_VERSION} (CPU build)"
# A plain PyPI torch on Linux x86_64 is the CUDA build (GBs of nvidia-* wheels); where no local
# CPU wheel is on pip's find-links, point RK_YOLO_TORCH_INDEX at a CPU wheel index.
TORCH_INDEX=()
if [ -n "${RK_YOLO_TORCH_INDEX:-}" ]; then TORCH_INDEX=(--extra-index-url "${RK_YOLO_TORCH_INDEX}"); fi
"${PIP[@]}" install -q "torch==${TORCH_VERSION}" "${TORCH_INDEX[@]}"
say "installing the toolkit's requirements"
"${PIP[@]}" install -q -c "${CONSTRAINTS}" numpy protobuf onnx onnxruntime \
  opencv-python-headless "psutil>=5.9.0" "ruamel.yaml>=0.17.21" "scipy>=1.9.3" \
  "tqdm>=4.64.1" "fast-histogram>=0.11"
say "installing rknn-toolkit2==${TOOLKIT_VERSION} (--no-deps)"
"${PIP[@]}" install -q --no-deps "rknn-toolkit2==${TOOLKIT_VERSION}"
if [ "${WITH_ULTRALYTICS}" = 1 ]; then
  # --no-deps: ultralytics asks for opencv-python, which would clash with the headless OpenCV
  # above (same cv2 package); its other requirements are installed under the same pins.
  say "installing ultralytics (for 'rk-yolo export MODEL.pt')"
  "${PIP[@]}" install -q --no-deps ultralytics
  "${PIP[@]}" install -q -c "${CONSTRAINTS}" "torchvision${TORCHVISION_PIN}" matplotlib pillow \
    pyyaml requests polars ultralytics-thop
fi
# rknn-toolkit2 imports pkg_resources, which new setuptools dropped; torch's metadata asks for
# setuptools>=77 but only its C++-extension builder uses it, which conversion never calls.
# pip reports that conflict below; it is expected.
say "pinning setuptools<70 (the toolkit needs pkg_resources; pip's torch/setuptools notice is expected)"
"${PIP[@]}" install -q "setuptools<70" 2>&1 | grep -v "^WARNING: Location" || true

say "checking: from rknn.api import RKNN"
"${ENV_DIR}/bin/python" -c 'import pkg_resources, numpy, torch; from rknn.api import RKNN; print("numpy", numpy.__version__, "torch", torch.__version__)'
if [ "${WITH_ULTRALYTICS}" = 1 ]; then
  say "checking: import ultralytics (a torchvision::nms notice from the CPU torch is harmless)"
  YOLO_CONFIG_DIR="${ENV_DIR}/ultralytics_settings" "${ENV_DIR}/bin/python" -c \
    'import ultralytics; print("ultralytics", ultralytics.__version__)' 2>&1 | tail -1
fi
echo "${WANT_STAMP}" > "${STAMP}"
END=$(date +%s)
SIZE="$(du -sh "${ENV_DIR}" | cut -f1)"
say "done in $((END - START)) s; ${ENV_DIR} takes ${SIZE}"
say "rk-yolo convert finds it there (or set RK_YOLO_RKNN_ENV)"
