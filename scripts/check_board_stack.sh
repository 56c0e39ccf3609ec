#!/usr/bin/env bash
# Run the ROS-free tests on the oldest stack our users' boards have: Ubuntu 22.04 + Humble ships
# Python 3.10, numpy 1.21 and OpenCV 4.5. Catches newer-only APIs before a user does.
# Needs a python3.10 (on PATH, or $RK_YOLO_PY310); without one it says so and exits 0.
# Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RK_YOLO_BOARD_VENV:-$ROOT/.venv-board-stack}
PY310=${RK_YOLO_PY310:-}
if [ -z "$PY310" ]; then
  for candidate in python3.10 "$HOME"/.pyenv/versions/3.10.*/bin/python3.10 /root/.pyenv/versions/3.10.*/bin/python3.10; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv' 2>/dev/null; then
      PY310=$(command -v "$candidate"); break
    fi
  done
fi
if [ -z "$PY310" ]; then
  echo "board stack: no python3.10 here (set RK_YOLO_PY310); the check did not run"
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY310" -m venv "$VENV"
fi
mkdir -p "$ROOT/log"
# The versions of Ubuntu 22.04 (numpy 1.21, OpenCV 4.5, scipy 1.8, tqdm 4.57) and the last
# releases that support them.
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "numpy==1.21.6" \
    "opencv-python-headless==4.5.5.64" "scipy==1.8.0" "onnxruntime==1.16.3" "onnx==1.14.1" \
    "tqdm==4.57.0" \
    "rosbags>=0.11,<0.12" psutil PyYAML pytest >"$ROOT/log/board-stack-pip.log" 2>&1 \
  || ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps -e . \
    >>"$ROOT/log/board-stack-pip.log" 2>&1; then
  tail -n 20 "$ROOT/log/board-stack-pip.log"
  echo "board stack: installing the old stack failed (log/board-stack-pip.log)" >&2
  exit 1
fi
echo "board stack: $("$VENV/bin/python" -c 'import sys, numpy, cv2, scipy; print(f"Python {sys.version.split()[0]}, numpy {numpy.__version__}, OpenCV {cv2.__version__}, scipy {scipy.__version__}")')"
# A clean environment: no ROS on the path, so this is the ROS-free suite a pip user runs.
env -u PYTHONPATH -u AMENT_PREFIX_PATH -u ROS_DISTRO -u LD_LIBRARY_PATH \
  "$VENV/bin/python" -m pytest test -q -p no:cacheprovider "$@"
