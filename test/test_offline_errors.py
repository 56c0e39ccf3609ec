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

"""A full disk, a write error mid-way and Ctrl-C: clear message, non-zero exit, outputs kept."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

from module_checks import requires
from offline_helpers import (count_video_frames, FAST_RUN, header_ns, read_bag, read_jsonl,
                             write_video)
import pytest

from rk_yolo_ros import cli

pytestmark = requires('rosbags', extra='bag')

REPO = pathlib.Path(__file__).resolve().parents[1]


def bag_stamps(path, topic):
    """Return the header stamps of a topic of a bag (it must be readable)."""
    return [header_ns(message) for _, message in read_bag(path).get(topic, [])]


@pytest.mark.skipif(not os.path.exists('/dev/full'), reason='needs /dev/full (Linux)')
def test_full_disk_stops_with_a_clear_error_and_closes_the_bag(tmp_path, capsys):
    """JSON lines to /dev/full (every write: ENOSPC): exit 1, 'no space', the bag closed."""
    video = write_video(tmp_path / 'in.mp4', 10)
    out_bag = tmp_path / 'out_bag'
    code = cli.main(['run', str(video), '--jsonl', '/dev/full', '--bag', str(out_bag)]
                    + FAST_RUN)
    assert code == 1
    captured = capsys.readouterr()
    assert 'cannot write /dev/full: no space left on the device' in captured.err
    assert 'error:      cannot write /dev/full' in captured.out  # in the summary too
    assert (out_bag / 'metadata.yaml').is_file()  # finalized, not left half-written
    assert bag_stamps(out_bag, '/image/detections') == []  # nothing got past the failed write


def test_write_error_mid_way_keeps_the_frames_before_it(tmp_path, capsys):
    """The JSON lines reader goes away after 3 lines: the run stops, the outputs agree."""
    count = 60
    video = write_video(tmp_path / 'in.mp4', count)
    fifo = tmp_path / 'lines.fifo'
    os.mkfifo(fifo)
    received = []

    def read_three_lines():
        with open(fifo, 'rb', buffering=0) as reader:
            while received.count(b'\n') < 3:
                received.append(reader.read(1))

    reader = threading.Thread(target=read_three_lines)
    reader.start()
    out = tmp_path / 'out'
    summary_path = tmp_path / 'summary.json'
    code = cli.main(['run', str(video), '--jsonl', str(fifo), '--output-dir', str(out),
                     '--summary-json', str(summary_path)] + FAST_RUN)
    reader.join()
    assert code == 1
    assert f'cannot write {fifo}' in capsys.readouterr().err
    summary = json.loads(summary_path.read_text())
    written = summary['written']
    assert 3 <= written < count
    stamps = [i * 100_000_000 for i in range(written)]
    assert bag_stamps(out / 'detections_bag', '/image/detections') == stamps
    assert bag_stamps(out / 'detections_bag', '/image/annotated') == stamps
    assert count_video_frames(out / 'annotated.mp4')[0] == written
    assert summary['frames_read'] == summary['processed'] + summary['failed'] + \
        summary['cancelled'] and summary['skipped'] == 0


def test_ctrl_c_keeps_everything_processed(tmp_path):
    """SIGINT to the process group mid-run: exit 130, bag/mp4/lines hold the same frames."""
    video = write_video(tmp_path / 'in.mp4', 1500, width=96, height=72)
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    process = subprocess.Popen(
        [sys.executable, '-m', 'rk_yolo_ros', 'run', str(video), '--output-dir', str(out)]
        + FAST_RUN, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
        env=env, start_new_session=True)
    lines = out / 'detections.jsonl'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if lines.is_file() and lines.read_text().count('\n') >= 20:
            break
        time.sleep(0.05)
    assert process.poll() is None, 'the run ended before it could be interrupted'
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert 'interrupted (Ctrl-C)' in stdout
    summary = json.loads((out / 'summary.json').read_text())
    written = summary['written']
    assert 20 <= written < 1500
    assert summary['processed'] == written and summary['skipped'] == 0
    assert summary['frames_read'] == written + summary['cancelled']
    stamps = [round(i * 1e9 / 10) for i in range(written)]
    assert bag_stamps(out / 'detections_bag', '/image/detections') == stamps
    assert count_video_frames(out / 'annotated.mp4')[0] == written
    assert [r['index'] for r in read_jsonl(lines)] == list(range(written))
