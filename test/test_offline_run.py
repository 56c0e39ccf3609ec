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

"""OfflineRun wiring: processing failures, source failures and summaries, in source order."""

from offline_helpers import count_video_frames, write_video
from pipeline_helpers import BrokenFactory, RecordingFactory

from rk_yolo_ros.core.frame_processing import DetectionSettings
from rk_yolo_ros.core.pipeline import PipelineConfig
from rk_yolo_ros.offline.run import EXIT_FRAMES_FAILED, format_summary, OfflineRun
from rk_yolo_ros.offline.sinks import VideoSink
from rk_yolo_ros.offline.sources import open_source


def small_config(workers=2):
    """Return a pipeline config for small, unpinned test frames."""
    return PipelineConfig(workers=workers, output_height=96, max_output_width=320,
                          cpu_affinity=None)


def test_processing_failures_are_counted_in_place(tmp_path):
    """A processor that raises on frames 2 and 5: those fail with the reason, others go on."""
    video = write_video(tmp_path / 'in.mp4', 10)
    out = tmp_path / 'out.mp4'
    with open_source(str(video)) as source:
        sink = VideoSink(out, source.fps)
        run = OfflineRun(source, RecordingFactory(max_latency_s=0.01, fail_ids=(2, 5)),
                         small_config(), DetectionSettings(), [sink])
        summary = run.run()
    assert (summary.frames_read, summary.processed, summary.failed, summary.skipped) == \
        (10, 8, 2, 0)
    assert summary.exit_code == EXIT_FRAMES_FAILED
    assert [f['index'] for f in summary.failures] == [2, 5]
    assert summary.failures[0]['reason'] == 'RuntimeError: injected failure on frame 2'
    assert summary.failure_reasons == {'RuntimeError: injected failure on frame 2': 1,
                                       'RuntimeError: injected failure on frame 5': 1}
    assert count_video_frames(out)[0] == 8  # the video shows the processed frames
    text = format_summary(summary)
    assert '10 read, 8 processed, 2 failed' in text and 'skipped:    0' in text
    assert 'frame 5: RuntimeError: injected failure on frame 5' in text


def test_worker_start_failure_ends_cleanly(tmp_path):
    """A processor that cannot be built: exit 1 with the reason; the outputs are not created."""
    video = write_video(tmp_path / 'in.mp4', 3)
    out = tmp_path / 'out.mp4'
    with open_source(str(video)) as source:
        summary = OfflineRun(source, BrokenFactory(), small_config(1), DetectionSettings(),
                             [VideoSink(out, 10.0)]).run()
    assert summary.exit_code == 1
    assert 'the workers could not start' in summary.error
    assert 'nonexistent.rknn' in summary.error
    assert not out.exists()
