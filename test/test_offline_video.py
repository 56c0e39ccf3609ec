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

"""`rk-yolo run` on videos and image folders: annotated video, bag and JSON lines agree."""

import json

import cv2
import numpy as np
from offline_helpers import (count_video_frames, FAST_RUN, frame_pixels, header_ns, read_bag,
                             read_jsonl, write_video)
import pytest

from rk_yolo_ros import cli
from rk_yolo_ros.offline.sources import open_source, SourceError

COUNT = 20


def test_video_round_trip_all_outputs(tmp_path):
    """A 20-frame mp4: 20 annotated frames, 20 bag frames stamped at 0.1 s steps, 20 lines."""
    pytest.importorskip('rosbags', reason='rosbags is not installed (pip extra "bag")')
    video = write_video(tmp_path / 'in.mp4', COUNT, fps=10.0)
    out = tmp_path / 'out'
    code = cli.main(['run', str(video), '--output-dir', str(out), '--frame-id', 'front']
                    + FAST_RUN)
    assert code == 0
    frames, size = count_video_frames(out / 'annotated.mp4')
    assert (frames, size) == (COUNT, (128, 96))
    messages = read_bag(out / 'detections_bag')
    for topic in ('/image/detections', '/image/annotated'):
        stamps = [header_ns(m) for _, m in messages[topic]]
        assert stamps == [i * 100_000_000 for i in range(COUNT)], topic
        assert [t for t, _ in messages[topic]] == stamps
        assert {m.header.frame_id for _, m in messages[topic]} == {'front'}
    records = read_jsonl(out / 'detections.jsonl')
    assert [r['index'] for r in records] == list(range(COUNT))
    assert [r['video_frame'] for r in records] == list(range(COUNT))  # which input frame
    summary = json.loads((out / 'summary.json').read_text())
    assert (summary['frames_read'], summary['processed'], summary['skipped']) == (COUNT, COUNT, 0)


def test_image_folder_with_an_unreadable_file(tmp_path, capsys):
    """A folder of images with one corrupt file: that frame fails, named; exit code 3."""
    folder = tmp_path / 'images'
    folder.mkdir()
    for index in range(6):
        cv2.imwrite(str(folder / f'frame_{index:03d}.png'), frame_pixels(index))
    (folder / 'frame_003.png').write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
    jsonl = tmp_path / 'd.jsonl'
    code = cli.main(['run', str(folder), '--jsonl', str(jsonl), '--fps', '5'] + FAST_RUN)
    assert code == 3
    output = capsys.readouterr().out
    assert '6 read, 5 processed, 1 failed' in output
    assert f'frame 3: cannot decode image file {folder / "frame_003.png"}: truncated png ' \
        'data' in output
    records = read_jsonl(jsonl)
    assert [r['status'] for r in records] == ['ok'] * 3 + ['failed'] + ['ok'] * 2
    assert [r['stamp']['nanosec'] for r in records[:3]] == [0, 200_000_000, 400_000_000]


def test_truncated_jpeg_and_png_in_a_folder_fail_with_the_reason(tmp_path, capsys):
    """
    JPEG and PNG files cut in half fail their frames, named, instead of decoding to grey.

    (libjpeg decodes a truncated JPEG to a grey-filled image with only a warning.)
    """
    folder = tmp_path / 'images'
    folder.mkdir()
    for index in range(6):
        suffix = '.jpg' if index % 2 else '.png'
        ok, encoded = cv2.imencode(suffix, frame_pixels(index))
        data = encoded.tobytes()
        if index in (2, 3):
            data = data[:len(data) // 2]
        (folder / f'frame_{index:03d}{suffix}').write_bytes(data)
    jsonl = tmp_path / 'd.jsonl'
    assert cli.main(['run', str(folder), '--jsonl', str(jsonl)] + FAST_RUN) == 3
    output = capsys.readouterr().out
    assert '6 read, 4 processed, 2 failed' in output
    assert f'image file {folder / "frame_002.png"}: truncated png data' in output
    assert f'image file {folder / "frame_003.jpg"}: truncated jpeg data' in output
    records = read_jsonl(jsonl)
    assert [r['file'] for r in records] == sorted(p.name for p in folder.iterdir())
    assert [r['status'] for r in records] == ['ok', 'ok', 'failed', 'failed', 'ok', 'ok']
    assert all(r['stage'] == 'decode' for r in records[2:4])


def test_images_of_other_sizes_keep_their_shape_in_the_video(tmp_path):
    """A portrait image after landscape ones is fitted into the video frame, not stretched."""
    folder = tmp_path / 'images'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), frame_pixels(0, 160, 120))  # 128x96 video frames
    portrait = np.full((160, 120, 3), 200, np.uint8)
    cv2.imwrite(str(folder / 'b.png'), portrait)  # 72x96 at the output height
    video = tmp_path / 'v.mp4'
    assert cli.main(['run', str(folder), '--video', str(video)] + FAST_RUN) == 0
    capture = cv2.VideoCapture(str(video))
    frames = [capture.read()[1] for _ in range(2)]
    capture.release()
    second = frames[1].astype(int)
    assert second.shape[:2] == (96, 128)
    # 72 columns of image in the middle, black bars of 28 columns on each side
    assert second[:, :24].mean() < 20 and second[:, -24:].mean() < 20
    assert second[20:80, 40:88].mean() > 150


def test_max_frames_stops_reading(tmp_path, capsys):
    """--max-frames 7 reads exactly 7 frames and says why it stopped."""
    video = write_video(tmp_path / 'in.mp4', COUNT)
    jsonl = tmp_path / 'd.jsonl'
    assert cli.main(['run', str(video), '--jsonl', str(jsonl), '--max-frames', '7']
                    + FAST_RUN) == 0
    assert len(read_jsonl(jsonl)) == 7
    assert 'after --max-frames 7 frames' in capsys.readouterr().out


def test_missing_and_undecodable_sources(tmp_path, capsys):
    """A missing path and a file that is no video give exit 2 with what was expected."""
    missing = tmp_path / 'nothing_here.mp4'
    assert cli.main(['run', str(missing)] + FAST_RUN) == 2
    assert f'source not found: {missing}' in capsys.readouterr().err
    not_video = tmp_path / 'notes.mp4'
    not_video.write_text('hello')
    with pytest.raises(SourceError, match='cannot open .*notes.mp4 as a video'):
        open_source(str(not_video))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(SourceError, match='holds no image files'):
        open_source(str(empty))


def test_real_model_on_the_demo_video(tmp_path, demo_model, demo_video):
    """The real ONNX person detector finds people in the first frames of vtest.avi."""
    jsonl = tmp_path / 'd.jsonl'
    code = cli.main(['run', str(demo_video), '--model', str(demo_model), '--backend', 'onnx',
                     '--workers', '2', '--max-frames', '4', '--jsonl', str(jsonl),
                     '--cpu-affinity', 'none', '--progress', 'off'])
    assert code == 0
    records = read_jsonl(jsonl)
    assert len(records) == 4
    for record in records:
        people = [d for d in record['detections'] if d['label'] in ('Normal', 'Fall')]
        assert len(people) >= 2  # vtest.avi shows several pedestrians in every frame
        for detection in people:
            x1, y1, x2, y2 = detection['box']
            assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 576  # the video's own pixels


def test_truncated_video_reports_the_missing_frames_as_failed(tmp_path, capsys):
    """An AVI cut at 60 %: the frames its index declares but the decoder lacks are failed."""
    writer = cv2.VideoWriter(str(tmp_path / 'full.avi'), cv2.VideoWriter_fourcc(*'MJPG'), 10,
                             (160, 120))
    assert writer.isOpened()
    for index in range(COUNT):
        writer.write(frame_pixels(index))
    writer.release()
    data = (tmp_path / 'full.avi').read_bytes()
    cut = tmp_path / 'cut.avi'
    cut.write_bytes(data[:int(len(data) * 0.6)])
    jsonl = tmp_path / 'd.jsonl'
    assert cli.main(['run', str(cut), '--jsonl', str(jsonl)] + FAST_RUN) == 3
    records = read_jsonl(jsonl)
    assert [r['index'] for r in records] == list(range(COUNT))  # none missing, none skipped
    failed = [r for r in records if r['status'] == 'failed']
    assert failed and failed[-1]['index'] == COUNT - 1
    assert all(r['stage'] == 'decode' and 'stream ended early' in r['error'] for r in failed)
    assert f'of {COUNT} could not be decoded' in capsys.readouterr().out
