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

from offline_helpers import count_video_frames, frame_pixels, read_jsonl, write_video
from pipeline_helpers import BrokenFactory, RecordingFactory

from rk_yolo_ros.core.frame_processing import DetectionSettings
from rk_yolo_ros.core.pipeline import PipelineConfig
from rk_yolo_ros.offline import run as run_module
from rk_yolo_ros.offline.run import (EXIT_FRAMES_FAILED, FAILURES_KEPT, format_summary,
                                     OfflineRun)
from rk_yolo_ros.offline.sinks import JsonLinesSink, VideoSink
from rk_yolo_ros.offline.sources import FrameMeta, FrameSource, open_source, SourceFrame
from rk_yolo_ros.yolo.detector import YoloDetectorFactory


class ListSource(FrameSource):
    """Frames from a list of (index, image or None for a frame that cannot be read)."""

    def __init__(self, items):
        """Keep the items."""
        super().__init__(f'{len(items)} listed frames')
        self.items, self.total, self.fps = items, len(items), 10.0

    def frames(self, select=None):
        """Yield the items in order, stamped at 10 fps."""
        for index, image in self.items:
            meta = FrameMeta(index, index * 100_000_000, 'cam', file=f'f{index}.png')
            yield SourceFrame(meta, image, '' if image is not None else 'unreadable')


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
    assert 'nonexistent.rknn' in summary.error and '\n' not in summary.error  # one line
    assert not out.exists()
    assert summary.outputs == [{'kind': 'video', 'path': str(out), 'created': False,
                                'frames': 0, 'text': f'video {out}: not written (no frame '
                                                     'reached it)'}]


def test_overlay_shows_the_inputs_own_frame_number(monkeypatch):
    """The overlay's 'frame N' is the input's number, also after a failed frame."""
    drawn = []
    monkeypatch.setattr(run_module, 'draw_overlay', lambda image, lines: drawn.append(lines[0]))
    # numbered from 100 (a selection of a longer input), frame 102 unreadable
    items = [(100 + i, frame_pixels(i) if i != 2 else None) for i in range(5)]
    summary = OfflineRun(ListSource(items), RecordingFactory(), small_config(),
                         DetectionSettings(), []).run()
    assert (summary.processed, summary.failed) == (4, 1)
    assert drawn == [f'frame {n}  skipped 0' for n in (100, 101, 103, 104)]


def test_summary_lists_failures_up_to_a_cap_and_says_what_each_output_holds(tmp_path):
    """1100 unreadable frames and 2 good ones: every failure counted, the list capped."""
    items = [(i, frame_pixels(i) if i in (0, 1101) else None) for i in range(1102)]
    factory = YoloDetectorFactory(backend='emulated', emulated_latency_s=0.0)
    jsonl, video = tmp_path / 'd.jsonl', tmp_path / 'v.mp4'
    summary = OfflineRun(ListSource(items), factory, small_config(), DetectionSettings(),
                         [JsonLinesSink(jsonl), VideoSink(video, 10.0)]).run()
    assert (summary.frames_read, summary.processed, summary.failed) == (1102, 2, 1100)
    assert len(summary.failures) == FAILURES_KEPT and summary.failures_omitted == 100
    assert summary.failures[0] == {'index': 1, 'file': 'f1.png', 'stage': 'decode',
                                   'reason': 'unreadable'}
    held = {output['kind']: output['frames'] for output in summary.outputs}
    assert held == {'jsonl': 1102, 'video': 2}  # what each output really holds
    assert len(read_jsonl(jsonl)) == 1102 and count_video_frames(video)[0] == 2
    text = format_summary(summary)
    assert 'frame 1 (f1.png): unreadable' in text
    assert '... and 1090 more (summary.json lists the first 1000; the JSON lines output has ' \
        'every one)' in text
    assert f'jsonl {jsonl} (1102 lines: 2 ok, 1100 failed)' in text
    assert f'video {video} (2 frames' in text
