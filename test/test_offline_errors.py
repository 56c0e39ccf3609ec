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

"""A full disk, a write error mid-way, stop signals: clear message, exit code, outputs kept."""

import json
import os
import signal
import threading
import time

from module_checks import requires
from offline_helpers import (count_video_frames, FAST_RUN, header_ns, read_bag, read_jsonl,
                             run_subprocess, write_video)
import pytest

from rk_yolo_ros import cli

pytestmark = requires('rosbags', extra='bag')


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
    held = {output['kind']: output['frames'] for output in summary['outputs']}
    written = held['bag']
    assert 3 <= written < count and held['jsonl'] == held['video'] == written
    stamps = [i * 100_000_000 for i in range(written)]
    assert bag_stamps(out / 'detections_bag', '/image/detections') == stamps
    assert bag_stamps(out / 'detections_bag', '/image/annotated') == stamps
    assert count_video_frames(out / 'annotated.mp4')[0] == written
    assert summary['frames_read'] == summary['processed'] + summary['failed'] + \
        summary['cancelled'] and summary['skipped'] == 0


def start_run(tmp_path, frames=1500, extra=()):
    """Start `rk-yolo run` on a video in a subprocess writing every output; wait for 20 lines."""
    video = write_video(tmp_path / 'in.mp4', frames, width=96, height=72)
    out = tmp_path / 'out'
    process = run_subprocess(['run', str(video), '--output-dir', str(out)] + FAST_RUN
                             + list(extra), start_new_session=True)
    lines = out / 'detections.jsonl'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if lines.is_file() and lines.read_text().count('\n') >= 20:
            break
        time.sleep(0.05)
    assert process.poll() is None, 'the run ended before it could be interrupted'
    return process, out


def read_back_every_output(out):
    """Read summary.json, the JSON lines, the bag and the mp4; check they agree; return them."""
    summary = json.loads((out / 'summary.json').read_text())
    records = read_jsonl(out / 'detections.jsonl')
    processed = [r for r in records if r['status'] == 'ok']
    assert [r['index'] for r in records] == list(range(summary['frames_read']))
    assert len(processed) == summary['processed'] and summary['skipped'] == 0
    assert summary['frames_read'] == summary['processed'] + summary['failed'] + \
        summary['cancelled']
    assert (out / 'detections_bag' / 'metadata.yaml').is_file()
    stamps = [r['stamp']['sec'] * 10**9 + r['stamp']['nanosec'] for r in processed]
    assert bag_stamps(out / 'detections_bag', '/image/detections') == stamps
    assert bag_stamps(out / 'detections_bag', '/image/annotated') == stamps
    assert count_video_frames(out / 'annotated.mp4')[0] == len(processed)  # a playable mp4
    held = {output['kind']: output['frames'] for output in summary['outputs']}
    assert held == {'jsonl': len(records), 'bag': len(processed), 'video': len(processed)}
    return summary, records


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=['SIGINT', 'SIGTERM', 'SIGHUP'])
def test_stop_signal_keeps_everything_processed(tmp_path, signum):
    """
    A stop signal mid-run: exit 128 + N; the summary is printed; every output is closed.

    SIGINT goes to the process group, as Ctrl-C in a terminal does; SIGTERM and SIGHUP to the
    main process only, as kill, timeout and docker stop do (the workers ignore all three).
    """
    process, out = start_run(tmp_path)
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)
    else:
        os.kill(process.pid, signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr
    name = 'Ctrl-C' if signum == signal.SIGINT else signal.Signals(signum).name
    assert f'interrupted ({name})' in stdout and 'skipped:    0' in stdout
    summary, records = read_back_every_output(out)
    assert 20 <= summary['processed'] < 1500
    assert summary['signal'] == name and summary['exit_code'] == 128 + signum
    assert summary['cancelled'] == 0  # the frames in flight were finished
    assert 'Traceback' not in stderr


def test_second_signal_cancels_the_frames_in_flight(tmp_path):
    """SIGTERM twice: the frames in flight are cancelled and reported, the outputs still agree."""
    process, out = start_run(tmp_path, frames=200, extra=['--emulated-latency-ms', '1500'])
    os.kill(process.pid, signal.SIGTERM)
    time.sleep(0.5)  # the frames in flight need 1.5 s each: they are still running
    os.kill(process.pid, signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    summary, records = read_back_every_output(out)
    assert summary['cancelled'] > 0
    cancelled = [r for r in records if r['status'] == 'cancelled']
    assert len(cancelled) == summary['cancelled']
    assert all('cancelled at shutdown' in r['error'] for r in cancelled)
