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

"""
Tracking on real frames: vtest.avi through the real detector, the pipeline and the tracker.

A person walking through the scene keeps one id over a long run of frames, and a worker killed
in the middle of the stream changes no id: the tracker sees every frame, in order, re-runs
included, so its output equals an undisturbed run's.
"""

import os
import signal

from bag_replay_helpers import video_frames
from module_checks import requires
import numpy as np
from rk_yolo_ros.core.frame_processing import DetectionSettings, FrameStatus
from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig
from rk_yolo_ros.yolo.detector import YoloDetectorFactory
from rk_yolo_ros.yolo.tracking import StreamTracker

pytestmark = requires('onnxruntime', 'scipy')
FRAMES = 60
KILL_AT = 25


def track(frames, model, kill_at=None):
    """Run frames through 2 ONNX workers and the tracker; return per frame [(id, box)]."""
    tracker = StreamTracker(enabled=True)
    tracked, killed = [], []

    def on_frame(frame):
        assert frame.status is FrameStatus.OK, frame.error
        detections = tracker.observe(frame.status, frame.result)
        pairs = zip(detections.track_ids.tolist(), detections.boxes.tolist())
        tracked.append([(int(i), box) for i, box in pairs if i >= 1])
        if kill_at is not None and frame.frame_id == kill_at and not killed:
            victim = pipeline.stats().workers[0]
            killed.append(victim.pid)
            os.kill(victim.pid, signal.SIGKILL)

    config = PipelineConfig(workers=2, cpu_affinity=None)
    pipeline = FramePipeline(config, YoloDetectorFactory(model_path=str(model)), on_frame)
    with pipeline:
        for image in frames:
            pipeline.submit(image, settings=DetectionSettings())
        assert pipeline.flush(timeout=600)
        restarts = [w.restarts for w in pipeline.stats().workers]
    return tracked, killed, restarts


def test_ids_are_stable_and_a_killed_worker_changes_none(demo_model, demo_video):
    """A walker keeps its id for 30+ frames; killing a worker mid-stream changes no id."""
    frames = video_frames(demo_video, FRAMES)
    undisturbed, _, _ = track(frames, demo_model)
    disturbed, killed, restarts = track(frames, demo_model, kill_at=KILL_AT)
    assert killed and restarts[0] == 1  # the worker really died and came back
    assert [[i for i, _ in f] for f in disturbed] == [[i for i, _ in f] for f in undisturbed]

    # for each id, its runs of consecutive frames and how far its box moved in each
    walkers = []
    for track_id in {i for frame in undisturbed for i, _ in frame}:
        run, first = 0, None
        for frame in undisturbed:
            boxes = [box for i, box in frame if i == track_id]
            if not boxes:
                run = 0
                continue
            centre = np.array([(boxes[0][0] + boxes[0][2]) / 2, (boxes[0][1] + boxes[0][3]) / 2])
            first = centre if run == 0 else first
            run += 1
            if run >= 30:
                walkers.append((float(np.linalg.norm(centre - first)), track_id, run))
    assert walkers, 'no id was seen in 30 consecutive frames'
    moved, track_id, run = max(walkers)
    assert moved >= 20.0, f'no id held for 30 frames moved 20 px (best: #{track_id}, {moved:.0f})'
