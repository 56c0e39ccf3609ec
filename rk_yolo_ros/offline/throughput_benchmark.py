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
Pipeline throughput with the EMULATED NPU backend (fixed latency; no real inference).

Run it as ``rk-yolo bench`` or ``python benchmarks/pipeline_throughput.py`` (same options).

For workers = 1, 2, 3: feeds 1920x1080 frames as fast as the pipeline accepts them and reports
frames/s, the ratio to the ideal workers / latency, main-process CPU ms per frame, p50/p99 latency
from intake to in-order release (over the last 2000 frames), peak RSS (main + workers) and frames
lost (must be 0), as JSON. It keeps nothing per frame, so a long run (``--frames 250000``) measures
the pipeline's memory; ``benchmarks/soak.py`` measures it over time.

    rk-yolo bench [--latency-ms 16.7] [--frames 300] [--workers 1 2 3]
"""

import argparse
from collections import deque
import json
import logging
import platform
import time

import cv2
import numpy as np
import psutil

from rk_yolo_ros.core.counters import LATENCY_WINDOW, percentiles_ms
from rk_yolo_ros.core.frame_processing import FrameStatus
from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig
from rk_yolo_ros.yolo.detector import YoloDetectorFactory

BACKEND_LABEL = 'emulated NPU backend (fixed sleep latency + synthetic YOLO outputs; not real ' \
                'inference)'


def machine_info():
    """Describe the machine the numbers come from."""
    model = platform.processor()
    try:
        with open('/proc/cpuinfo') as handle:
            for line in handle:
                if line.startswith(('model name', 'Model')):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return {'platform': platform.platform(), 'machine': platform.machine(), 'cpu': model,
            'cpus': psutil.cpu_count(), 'python': platform.python_version(),
            'numpy': np.__version__, 'opencv': cv2.__version__}


def process_memory(process, unique=False):
    """Return the RSS (or, with ``unique``, the USS) in bytes of one process; None if gone."""
    try:
        return process.memory_full_info().uss if unique else process.memory_info().rss
    except psutil.Error:
        return None


def _tree_memory(process, unique=False):
    """Return the RSS (or, with ``unique``, the USS) in bytes of a process and its children."""
    return sum(process_memory(proc, unique) or 0
               for proc in [process] + process.children(recursive=True))


def measure(workers, latency_s, frames, layout, source_size=(1920, 1080)):
    """Run one configuration and return its figures."""
    # Bounded, so a long run measures the pipeline's memory and not a growing list of ours:
    # the latency percentiles cover the last LATENCY_WINDOW frames (all of a default run).
    latencies = deque(maxlen=LATENCY_WINDOW)
    ok = {'frames': 0}
    me = psutil.Process()
    peak = {'rss': 0}

    def on_frame(frame):
        ok['frames'] += frame.status is FrameStatus.OK
        latencies.append(frame.latency_s)
        if frame.frame_id % 25 == 0:
            peak['rss'] = max(peak['rss'], _tree_memory(me))

    factory = YoloDetectorFactory(backend='emulated', emulated_latency_s=latency_s,
                                  emulated_layout=layout)
    config = PipelineConfig(workers=workers)
    width, height = source_size
    rng = np.random.default_rng(0)
    inputs = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(4)]
    with FramePipeline(config, factory, on_frame) as pipeline:
        warmup = 4 * workers
        for index in range(warmup):
            pipeline.submit(inputs[index % len(inputs)])
        pipeline.flush()
        latencies.clear()
        ok['frames'] = 0
        cpu_before = me.cpu_times()
        wall_before = time.perf_counter()
        for index in range(frames):
            pipeline.submit(inputs[index % len(inputs)])
        pipeline.flush()
        wall = time.perf_counter() - wall_before
        cpu_after = me.cpu_times()
        stats = pipeline.stats()
        unique = _tree_memory(me, unique=True)
    main_cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    fps = frames / wall
    ideal = workers / latency_s
    p50, p99 = percentiles_ms(latencies)
    return {
        'workers': workers,
        'frames': frames,
        'fps': round(fps, 2),
        'ideal_fps': round(ideal, 2),
        'ratio_to_ideal': round(fps / ideal, 4),
        'main_process_cpu_ms_per_frame': round(main_cpu * 1000.0 / frames, 3),
        'latency_p50_ms': round(p50, 2),
        'latency_p99_ms': round(p99, 2),
        # RSS counts shared libraries and the shared frame slots once per process; USS does not
        'peak_rss_mb': round(peak['rss'] / 2 ** 20, 1),
        'unique_memory_mb': round(unique / 2 ** 20, 1),
        'frames_lost': stats.counters.accepted - ok['frames'] - warmup,
        'frames_failed': stats.counters.failed,
        'slots': stats.slots_total,
    }


def run_benchmark(workers=(1, 2, 3), latency_ms=16.7, frames=300, layout='ultralytics'):
    """Run every configuration; return the JSON-ready report."""
    results = [measure(count, latency_ms / 1000.0, frames, layout) for count in workers]
    return {
        'benchmark': 'pipeline_throughput',
        'backend': BACKEND_LABEL,
        'machine': machine_info(),
        'inputs': {'source_size': [1920, 1080], 'output_height': 720,
                   'emulated_latency_ms': latency_ms, 'emulated_output_layout': layout,
                   'frames_per_config': frames, 'start_method': 'spawn',
                   'note': 'worker CPU pinning needs CPUs 4-7 (RK3588 big cores); where absent '
                           'the workers run unpinned'},
        'results': results,
    }


def main(argv=None, prog=None):
    """Parse arguments, run, print JSON; return 1 if any frame was lost."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.strip().splitlines()[0])
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--latency-ms', type=float, default=16.7,
                        help='emulated inference latency (16.7 ms: yolo11n on one RK3588 core)')
    parser.add_argument('--frames', type=int, default=300, help='frames per configuration')
    parser.add_argument('--layout', choices=['ultralytics', 'rknn_split'], default='rknn_split',
                        help='shape of the emulated raw outputs')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    report = run_benchmark(args.workers, args.latency_ms, args.frames, args.layout)
    print(json.dumps(report, indent=2))
    return 1 if any(r['frames_lost'] for r in report['results']) else 0
