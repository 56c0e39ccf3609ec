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

"""The benchmarks run and say what they measured: the camera-rate mode, the reference harness."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from rk_yolo_ros.offline import throughput_benchmark

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / 'benchmarks'


def test_rate_mode_reports_latency_from_submit_to_release(capsys):
    """--rate feeds frames at a camera's pace and reports the latency, beside its baseline."""
    code = throughput_benchmark.main(['--workers', '1', '2', '--frames', '12', '--rate', '60',
                                      '--latency-ms', '5'])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report['benchmark'] == 'pipeline_latency_at_camera_rate'
    assert report['inputs']['rate_fps'] == 60.0
    assert set(report['baseline']) == {'inference_alone_p50_ms', 'inference_alone_p99_ms'}
    assert [row['workers'] for row in report['results']] == [1, 2]
    for row in report['results']:
        assert row['frames'] == 12 and row['frames_lost'] == 0 and row['frames_failed'] == 0
        assert row['latency_submit_to_release_p99_ms'] >= row['latency_submit_to_release_p50_ms']
        assert row['p50_over_emulated_inference'] == pytest.approx(
            row['latency_submit_to_release_p50_ms'] / 5.0, abs=0.002)
    assert len(report['machine']['load_average_1_5_15_before']) == 3


def test_compressed_mode_measures_worker_decoding_beside_decoding_here(capsys):
    """--compressed: JPEG bytes the workers decode, and the same decoded in the main process."""
    code = throughput_benchmark.main(['--workers', '1', '--frames', '8', '--compressed',
                                      '--latency-ms', '2'])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report['benchmark'] == 'pipeline_throughput_compressed'
    assert report['inputs']['source_size'] == [1280, 720]
    assert 'JPEG' in report['inputs']['source']
    assert [row['feed'] for row in report['results']] == ['jpeg', 'jpeg_decoded_here']
    for row in report['results']:
        assert row['frames_lost'] == 0 and row['frames_failed'] == 0


@pytest.mark.parametrize('rate', ['0', '-5', 'inf', 'fast'])
def test_rate_must_be_positive(rate, capsys):
    with pytest.raises(SystemExit):
        throughput_benchmark.main(['--rate', rate])
    assert '--rate must be frames per second > 0' in capsys.readouterr().err


def python_segments():
    """Return the shared-memory segments with Python's default names (the reference's)."""
    return {name for name in os.listdir('/dev/shm') if name.startswith('psm_')}


def test_reference_design_harness_runs_both_designs_in_one_run():
    """
    The capacity harness runs the reference design and ours; nothing is left in /dev/shm.

    In a fresh interpreter: the reference design forks, which a test process with threads
    should not do.
    """
    before = python_segments()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(BENCHMARKS.parent)] + os.environ.get('PYTHONPATH', '').split(os.pathsep)))
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / 'reference_design_capacity.py'), '--workers', '1',
         '--frames', '6', '--warmup', '2'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report['benchmark'] == 'reference_design_capacity'
    row = report['results'][0]
    assert row['workers'] == 1
    for design in ('reference_design', 'ours'):
        assert row[design]['fps'] > 0
        assert {'all_processes', 'main', 'workers'} <= set(row[design]['cpu_ms_per_frame'])
    assert 'reader' in row['reference_design']['cpu_ms_per_frame']
    assert row['ours_over_reference'] == pytest.approx(
        row['ours']['fps'] / row['reference_design']['fps'], abs=0.01)
    assert 'leaked' not in done.stderr  # the resource tracker saw every segment unlinked
    assert python_segments() - before == set()


def test_multi_camera_benchmark_accounts_for_every_camera_frame():
    """
    benchmarks/multi_camera.py runs each scenario and accounts for every published frame.

    A short run (goals are for the full run: its exit status is not checked here). Each
    camera's frames are processed or lost at its queue; the per-process comparison processes
    every frame of each camera on both sides.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(BENCHMARKS.parent)] + os.environ.get('PYTHONPATH', '').split(os.pathsep)))
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / 'multi_camera.py'), '--seconds', '0.4',
         '--latency-ms', '5', '--workers', '2', '--flat-out-frames', '6'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env,
        timeout=300)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    assert report['benchmark'] == 'multi_camera' and 'emulated' in report['backend']
    results = report['results']
    assert set(results) == {'three_cameras', 'six_cameras', 'bursty', 'process_per_camera'}
    runs = {'three_cameras annotated': results['three_cameras']['annotated'],
            'three_cameras detections_only': results['three_cameras']['detections_only'],
            'six_cameras': results['six_cameras'], 'bursty': results['bursty']}
    assert [len(run['cameras']) for run in runs.values()] == [3, 3, 6, 3]
    for run in runs.values():
        for camera in run['cameras']:
            assert camera['processed'] + camera['lost'] == camera['published'], camera
        assert run['frames_failed'] == 0 and isinstance(run['met'], bool)
    assert {kind: one['processed'] for kind, one in report['baseline']['one_camera'].items()} \
        == {'annotated': 12, 'detections_only': 12}
    compared = results['process_per_camera']
    for side in ('one_pipeline', 'process_per_camera', 'process_per_camera_one_worker_each'):
        assert compared[side]['per_camera_processed'] == {f'camera{i}': 6 for i in range(3)}
        assert compared[side]['uss_mb'] > 0 and compared[side]['frame_slots_mb'] > 0
    assert compared['process_per_camera']['processes'] == 3
    assert compared['process_per_camera']['workers'] == 6


def _soak_module():
    """Import benchmarks/soak.py (a script, not a package module)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('soak', BENCHMARKS / 'soak.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_soak_level_slope_sees_through_frames_in_flight():
    """
    Frames in flight put samples on levels a frame apart; the level slope finds the creep.

    Later in the synthetic run the high level is hit more often, which tilts a line through
    all samples; within the levels the true creep (0.01 MB per 10k frames) comes back.
    """
    import numpy as np
    soak = _soak_module()
    rng = np.random.default_rng(3)
    frames = np.arange(0, 300000, 1000, dtype=np.float64)
    late = frames / frames[-1]
    in_flight = (rng.random(len(frames)) < 0.2 + 0.6 * late).astype(np.float64)
    values = 90.0 + 0.01 * frames / 10000 + 5.93 * in_flight + rng.normal(0, 0.002, len(frames))
    slope, levels = soak.level_slope(frames, values)
    assert levels == 2
    assert abs(slope * 10000 - 0.01) < 0.002
    assert np.polyfit(frames, values, 1)[0] * 10000 > 0.05  # a plain line: over the goal


def test_soak_level_slope_still_sees_a_steady_leak():
    """A steady leak keeps the samples contiguous: one level, the least-squares slope."""
    import numpy as np
    soak = _soak_module()
    frames = np.arange(0, 100000, 500, dtype=np.float64)
    values = 60.0 + 0.5 * frames / 10000  # 0.5 MB per 10k frames, 5 MB in all
    slope, levels = soak.level_slope(frames, values)
    assert levels == 1
    assert slope * 10000 == pytest.approx(0.5)
