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

"""The rk-yolo command line: subcommands, bad arguments, bench, the progress bar on a TTY."""

import json
import os
import pathlib
import pty
import subprocess
import sys

from offline_helpers import FAST_RUN, unwritable_folder, write_video
import pytest

from rk_yolo_ros import __version__
from rk_yolo_ros import cli

REPO = pathlib.Path(__file__).resolve().parents[1]


def python_env():
    """Return an environment in which ``python -m rk_yolo_ros`` imports this checkout."""
    return dict(os.environ,
                PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))


def test_version_and_subcommands(capsys):
    """--version prints the package version; run and bench are always there."""
    with pytest.raises(SystemExit) as exited:
        cli.main(['--version'])
    assert exited.value.code == 0
    assert __version__ in capsys.readouterr().out
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {'run', 'bench'} <= set(commands)
    if parser.model_tools_note is None:  # the model tools are installed: their commands too
        assert {'export', 'convert', 'verify'} <= set(commands)
    else:
        assert 'model tools' in parser.model_tools_note


@pytest.mark.parametrize('arguments, message', [
    (['--workers', '0'], r'argument --workers: workers must be an integer in [1, 64], got 0'),
    (['--classes', '0,a'], 'classes must be a list of class ids >= 0 (empty: all classes), '
                           "got [0, 'a']"),
    (['--input-size', '640'], 'input_size must be WIDTHxHEIGHT like 640x640'),
    (['--conf', '1.5'], 'argument --conf-threshold/--conf: conf_threshold must be a number in '
                        '[0, 1], got 1.5'),
    (['--core-masks', '7'], 'mask 7 runs one model on all three NPU cores'),
    (['--cpu-affinity', 'big'], 'cpu_affinity must be a list of CPU numbers >= 0 (empty: no '
                                "pinning), got ['big']"),
    (['--bag-storage', 'zip'], "invalid choice: 'zip'"),
    (['--fps', '-5'], "argument --fps: expected a frame rate > 0 (frames per second), got '-5'"),
    (['--fps', '0'], "argument --fps: expected a frame rate > 0 (frames per second), got '0'"),
    (['--fps', 'nan'], 'argument --fps: expected a frame rate > 0 (frames per second), got '
                       "'nan'"),
])
def test_bad_option_values_exit_2(arguments, message, capsys):
    """Malformed option values are refused by argparse with exit code 2, naming the value."""
    with pytest.raises(SystemExit) as exited:
        cli.main(['run', 'video.mp4'] + arguments)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_model_is_refused_before_any_worker(tmp_path, capsys):
    """A model file that is not there: exit 2 with the path, nothing started."""
    video = write_video(tmp_path / 'in.mp4', 3)
    missing = tmp_path / 'missing.onnx'
    assert cli.main(['run', str(video), '--model', str(missing), '--backend', 'onnx']) == 2
    assert f'model file not found: {missing}' in capsys.readouterr().err


def output_checks(folder):
    """Return (output options, expected message) that cannot be written into ``folder``."""
    return [
        (['--video', str(folder / 'out.mp4')], f'cannot write video {folder / "out.mp4"}'),
        (['--jsonl', str(folder / 'd.jsonl')], f'cannot write JSON lines {folder / "d.jsonl"}'),
        (['--bag', str(folder / 'bag')], f'cannot write bag {folder / "bag"}'),
        (['--summary-json', str(folder / 's.json')],
         f'cannot write summary {folder / "s.json"}'),
        (['--output-dir', str(folder / 'out')],
         f'cannot write into --output-dir {folder / "out"}'),
    ]


def test_outputs_are_checked_before_anything_starts_or_is_created(tmp_path, capsys):
    """
    Each output in a folder that cannot be written: exit 2 at once, naming the output.

    Nothing is created (not even --output-dir) and no worker starts; the video encoder is
    checked too, before any frame.
    """
    video = write_video(tmp_path / 'in.mp4', 3)
    out = tmp_path / 'out'
    folder = unwritable_folder(tmp_path)
    cases = output_checks(folder) + [
        (['--video', str(tmp_path / 'v.mp4'), '--fourcc', 'ZZZZ'], 'no ZZZZ encoder'),
        (['--jsonl', str(tmp_path / 'absent' / 'd.jsonl')],
         f'{tmp_path / "absent"} does not exist'),
        (['--jsonl', str(tmp_path / 'same'), '--summary-json', str(tmp_path / 'same')],
         'is given for two outputs')]
    for options, message in cases:
        assert cli.main(['run', str(video), '-o', str(out)] + options + FAST_RUN) == 2, options
        error = capsys.readouterr().err
        assert message in error, options
        assert 'worker(s)' not in error and not out.exists()  # refused before the run
        assert sorted(p.name for p in tmp_path.iterdir()) == ['in.mp4', 'read_only']


def test_a_model_of_the_wrong_shape_is_one_line_before_any_worker(tmp_path, capsys):
    """A valid ONNX classifier: exit 2, one line naming its shapes, no worker, nothing made."""
    from test_model_check import needs_onnx, write_onnx
    if needs_onnx.args[0]:
        pytest.skip(needs_onnx.kwargs['reason'])
    model = write_onnx(tmp_path / 'classifier.onnx')
    video = write_video(tmp_path / 'in.mp4', 3)
    out = tmp_path / 'out'
    assert cli.main(['run', str(video), '--model', str(model), '--workers', '1', '-o',
                     str(out), '--progress', 'off']) == 2
    error = capsys.readouterr().err
    assert error.count('\n') == 1 and 'Traceback' not in error
    assert 'classifier.onnx does not look like a YOLO detector' in error
    assert not out.exists()


def test_a_worker_that_cannot_start_is_reported_in_one_line(tmp_path, capsys):
    """
    A dynamic-size model passes the main-process check but fails in the worker: one line each.

    Its outputs are known only once it runs, so the worker's first inference finds them wrong;
    the traceback is left to --verbose, and the summary says the output was never written.
    """
    from test_model_check import needs_onnx, write_onnx
    if needs_onnx.args[0]:
        pytest.skip(needs_onnx.kwargs['reason'])
    model = write_onnx(tmp_path / 'dynamic.onnx', input_shape=(1, 3, 'h', 'w'))
    video = write_video(tmp_path / 'in.mp4', 3)
    jsonl = tmp_path / 'd.jsonl'
    assert cli.main(['run', str(video), '--model', str(model), '--workers', '1', '--jsonl',
                     str(jsonl), '--cpu-affinity', 'none', '--progress', 'off']) == 1
    captured = capsys.readouterr()
    assert 'Traceback' not in captured.err + captured.out
    assert 'could not start: DecodeError: dynamic.onnx: unexpected output shape (1, 3)' in \
        captured.err
    assert f'jsonl {jsonl}: not written (no frame reached it)' in captured.out
    assert not jsonl.exists()


def test_a_rejected_source_leaves_no_output_folder(tmp_path, capsys):
    """A missing source with -o: exit 2, and the output folder was never made."""
    out = tmp_path / 'out'
    assert cli.main(['run', str(tmp_path / 'nothing.mp4'), '-o', str(out)] + FAST_RUN) == 2
    assert 'source not found' in capsys.readouterr().err
    assert not out.exists()


def test_more_workers_than_the_hardware_is_warned_before_work(tmp_path, capsys, monkeypatch):
    """--workers beyond the NPU cores (rknn) or the CPUs: a warning names the hardware."""
    from rk_yolo_ros.yolo.detector import YoloDetectorFactory
    # rknn cannot pass its check off the board; take the factory as checked
    monkeypatch.setattr(YoloDetectorFactory, 'check', lambda factory: 'rknn')
    model = tmp_path / 'm.rknn'
    model.write_bytes(b'rknn')
    assert cli.main(['run', str(tmp_path / 'absent.mp4'), '--model', str(model),
                     '--workers', '5']) == 2
    error = capsys.readouterr().err
    assert 'warning: 5 workers for 3 RK3588 NPU cores' in error
    assert error.index('warning') < error.index('source not found')


def test_no_model_and_no_cached_demo_model(tmp_path, monkeypatch, capsys):
    """Without --model and without the cached demo model, the error says how to get one."""
    monkeypatch.setenv('RK_YOLO_ASSETS', str(tmp_path / 'empty_cache'))
    video = write_video(tmp_path / 'in.mp4', 3)
    assert cli.main(['run', str(video), '--progress', 'off']) == 2
    assert 'rk-yolo fetch-demo' in capsys.readouterr().err


def test_bench_runs_the_throughput_benchmark(capsys):
    """Bench prints the throughput benchmark's JSON, named as the emulated backend's."""
    code = cli.main(['bench', '--workers', '1', '--frames', '10'])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report['results'][0]['frames_lost'] == 0
    assert report['results'][0]['workers'] == 1 and report['results'][0]['frames'] == 10
    assert 'emulated' in report['backend']


def test_progress_bar_only_on_a_terminal(tmp_path):
    """On a pseudo-terminal stderr shows frames, rate and ETA; piped stderr has no bar."""
    video = write_video(tmp_path / 'in.mp4', 30)
    command = [sys.executable, '-m', 'rk_yolo_ros', 'run', str(video)] + FAST_RUN[:-2]
    master, slave = pty.openpty()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=slave,
                               env=python_env())
    os.close(slave)
    shown = b''
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert process.wait(timeout=60) == 0
    process.stdout.close()
    text = shown.decode()
    assert '30/30 frames' in text and 'frames/s' in text and 'ETA' in text and '\r' in text
    piped = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, env=python_env(), timeout=60)
    assert piped.returncode == 0
    assert '\r' not in piped.stderr and 'ETA' not in piped.stderr
    assert '30 read, 30 processed, 0 failed' in piped.stdout
