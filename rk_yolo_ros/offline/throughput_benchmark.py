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

With ``--rate FPS`` it feeds them at a camera's pace instead (frame i is due at i / FPS s) and
reports p50/p99 latency from the submit call to the in-order release, and its ratio to the
emulated inference time, beside that inference alone timed the same way in the same run
(``time.sleep`` overshoots on a busy machine). Throughput is not the question there: what a
camera's consumer waits for each frame is.

With ``--compressed`` the input is a 1280x720 JPEG (a real photo) handed over as bytes
(``submit_encoded``: a worker decodes it), measured beside the same JPEG decoded in the main
process first (the baseline), for each worker count.

    rk-yolo bench [--latency-ms 16.7] [--frames 300] [--workers 1 2 3] [--rate 30]
                  [--compressed]
"""

import argparse
from collections import deque
import json
import logging
import os
import platform
import threading
import time

import cv2
import numpy as np
import psutil

from rk_yolo_ros.core.counters import LATENCY_WINDOW, percentiles_ms
from rk_yolo_ros.core.frame_processing import FrameStatus
from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig
from rk_yolo_ros.yolo import demo_assets
from rk_yolo_ros.yolo.backends.emulated import EmulatedBackend
from rk_yolo_ros.yolo.detector import YoloDetectorFactory

RAW_SIZE = (1920, 1080)
COMPRESSED_SIZE = (1280, 720)
JPEG_QUALITY = 90
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


def emulated_inference_alone(latency_s, layout, count=100):
    """Time the emulated backend's inference alone, in this process (the rate mode's baseline)."""
    backend = EmulatedBackend(latency_s, layout=layout)
    backend.load()
    width, height = backend.input_size
    tensor = np.zeros((1, height, width, 3), np.uint8)
    times = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            backend.infer(tensor)
            times.append(time.perf_counter() - started)
    finally:
        backend.release()
    p50, p99 = percentiles_ms(times)
    return {'inference_alone_p50_ms': round(p50, 2), 'inference_alone_p99_ms': round(p99, 2)}


def camera_like_jpeg(width, height, quality=JPEG_QUALITY):
    """
    Return JPEG bytes of a camera-like picture and what it is.

    zidane.jpg (a real photo; random pixels would make an unrealistic JPEG) resized to
    ``width`` x ``height`` when the demo images are cached, else a smooth gradient.
    """
    paths = [p for p in demo_assets.image_paths() or [] if p.name == 'zidane.jpg']
    if paths:
        pixels = cv2.resize(cv2.imread(str(paths[0])), (width, height),
                            interpolation=cv2.INTER_AREA)
        picture = paths[0].name
    else:
        ramp = np.add.outer(np.linspace(0, 127, height), np.linspace(0, 127, width))
        pixels = np.repeat(ramp[:, :, np.newaxis], 3, axis=2).astype(np.uint8)
        picture = 'a gradient'
    ok, data = cv2.imencode('.jpg', pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('OpenCV could not encode a JPEG')
    return data.tobytes(), f'{width}x{height} JPEG (quality {quality}) of {picture}, ' \
                           f'{data.size} bytes'


def _feeder(feed, source_size):
    """Return ``submit(pipeline, index) -> frame id`` for one kind of input."""
    width, height = source_size
    if feed == 'raw':
        rng = np.random.default_rng(0)
        inputs = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(4)]
        return lambda pipeline, index: pipeline.submit(inputs[index % len(inputs)])
    data, _ = camera_like_jpeg(width, height)
    if feed == 'jpeg':  # the workers decode
        return lambda pipeline, index: pipeline.submit_encoded(data)
    return lambda pipeline, index: pipeline.submit(  # 'jpeg_decoded_here': the old way
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


def measure(workers, latency_s, frames, layout, source_size=RAW_SIZE, rate=None,
            feed='raw'):
    """Run one configuration (flat out, or ``rate`` frames/s) and return its figures."""
    # Bounded, so a long run measures the pipeline's memory and not a growing list of ours:
    # the latency percentiles cover the last LATENCY_WINDOW frames (all of a default run).
    latencies = deque(maxlen=LATENCY_WINDOW)
    ok = {'frames': 0}
    submitted = {}  # frame id -> when its submit call began (rate mode; only those in flight)
    released = deque(maxlen=LATENCY_WINDOW)  # submit-to-release seconds (rate mode)
    me = psutil.Process()
    peak = {'rss': 0}

    def on_frame(frame):
        ok['frames'] += frame.status is FrameStatus.OK
        latencies.append(frame.latency_s)
        if frame.frame_id in submitted:
            released.append(time.monotonic() - submitted.pop(frame.frame_id))
        if frame.frame_id % 25 == 0:
            peak['rss'] = max(peak['rss'], _tree_memory(me))

    factory = YoloDetectorFactory(backend='emulated', emulated_latency_s=latency_s,
                                  emulated_layout=layout)
    config = PipelineConfig(workers=workers)
    submit = _feeder(feed, source_size)
    lock = threading.Lock()  # on_frame must not look up an id before submit recorded it

    def on_frame_locked(frame):
        with lock:
            on_frame(frame)

    with FramePipeline(config, factory, on_frame_locked if rate else on_frame) as pipeline:
        warmup = 4 * workers
        for index in range(warmup):
            submit(pipeline, index)
        pipeline.flush()
        latencies.clear()
        ok['frames'] = 0
        cpu_before = me.cpu_times()
        wall_before = time.perf_counter()
        late = 0
        for index in range(frames):
            if rate:
                due = wall_before + index / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                else:
                    late += wait < -0.5 / rate  # behind by half a frame period or more
                started = time.monotonic()
                with lock:  # the id is known only once submit returns
                    frame_id = submit(pipeline, index)
                    submitted[frame_id] = started
            else:
                submit(pipeline, index)
        pipeline.flush()
        wall = time.perf_counter() - wall_before
        cpu_after = me.cpu_times()
        stats = pipeline.stats()
        unique = _tree_memory(me, unique=True)
    main_cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    fps = frames / wall
    ideal = workers / latency_s
    p50, p99 = percentiles_ms(latencies)
    lost = stats.counters.accepted - ok['frames'] - warmup
    if rate:
        submit_p50, submit_p99 = percentiles_ms(released)
        return {
            'workers': workers,
            'frames': frames,
            'rate_fps': rate,
            'achieved_fps': round(fps, 2),
            'submits_late': late,  # the pipeline held a submit back by half a period or more
            'latency_submit_to_release_p50_ms': round(submit_p50, 2),
            'latency_submit_to_release_p99_ms': round(submit_p99, 2),
            'p50_over_emulated_inference': round(submit_p50 / (latency_s * 1000.0), 3),
            'main_process_cpu_ms_per_frame': round(main_cpu * 1000.0 / frames, 3),
            'frames_lost': lost,
            'frames_failed': stats.counters.failed,
        }
    return {
        'workers': workers,
        'feed': feed,
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
        'frames_lost': lost,
        'frames_failed': stats.counters.failed,
        'slots': stats.slots_total,
    }


def run_benchmark(workers=(1, 2, 3), latency_ms=16.7, frames=300, layout='ultralytics',
                  rate=None, compressed=False):
    """Run every configuration; return the JSON-ready report."""
    load_before = os.getloadavg()
    source_size = COMPRESSED_SIZE if compressed else RAW_SIZE
    feeds = ('jpeg', 'jpeg_decoded_here') if compressed else ('raw',)
    results = [measure(count, latency_ms / 1000.0, frames, layout, source_size, rate, feed)
               for count in workers for feed in feeds]
    report = {
        'benchmark': ('pipeline_latency_at_camera_rate' if rate else 'pipeline_throughput')
        + ('_compressed' if compressed else ''),
        'backend': BACKEND_LABEL,
        'machine': dict(machine_info(), load_average_1_5_15_before=load_before,
                        load_average_1_5_15_after=os.getloadavg()),
        'inputs': {'source_size': list(source_size), 'output_height': 720,
                   'source': (camera_like_jpeg(*source_size)[1] if compressed
                              else 'random pixels, bgr'),
                   'feeds': {'raw': 'submit(BGR frame)',
                             'jpeg': 'submit_encoded(JPEG bytes): a worker decodes',
                             'jpeg_decoded_here': 'cv2.imdecode in the main process, then '
                                                  'submit (the baseline: decoding where the '
                                                  'frames arrive)'},
                   'emulated_latency_ms': latency_ms, 'emulated_output_layout': layout,
                   'frames_per_config': frames, 'start_method': 'spawn',
                   'rate_fps': rate or 'as fast as accepted',
                   'note': 'worker CPU pinning needs CPUs 4-7 (RK3588 big cores); where absent '
                           'the workers run unpinned'},
        'results': results,
    }
    if rate:
        report['baseline'] = emulated_inference_alone(latency_ms / 1000.0, layout)
    return report


def _positive_rate(text):
    """Parse --rate: frames per second, a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not value > 0 or value == float('inf'):
        raise argparse.ArgumentTypeError(f'--rate must be frames per second > 0, got {text!r}')
    return value


def main(argv=None, prog=None):
    """Parse arguments, run, print JSON; return 1 if any frame was lost."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.strip().splitlines()[0])
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--latency-ms', type=float, default=16.7,
                        help='emulated inference latency (16.7 ms: yolo11n on one RK3588 core)')
    parser.add_argument('--frames', type=int, default=300, help='frames per configuration')
    parser.add_argument('--layout', choices=['ultralytics', 'rknn_split'], default='rknn_split',
                        help='shape of the emulated raw outputs')
    parser.add_argument('--rate', type=_positive_rate, default=None, metavar='FPS',
                        help="feed frames at this rate (a camera's pace) and report the latency "
                             'from submit to release; default: as fast as accepted')
    parser.add_argument('--compressed', action='store_true',
                        help='feed 1280x720 JPEG bytes that the workers decode, beside the same '
                             'JPEGs decoded in the main process (the baseline)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    report = run_benchmark(args.workers, args.latency_ms, args.frames, args.layout, args.rate,
                           args.compressed)
    print(json.dumps(report, indent=2))
    return 1 if any(r['frames_lost'] for r in report['results']) else 0
