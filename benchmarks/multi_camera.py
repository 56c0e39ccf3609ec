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
Several cameras on one pipeline, with the EMULATED NPU backend (fixed latency; no real inference).

Every inference is an emulated 16.7 ms (yolo11n on one RK3588 core) with synthetic YOLO outputs,
so this measures the pipeline (intake, slots, workers' CPU work, order, fairness), not a model.
The backend's NPU lock (benchmarks only) makes inferences on one core mask run one at a time
across processes, as RKNN does; without it, a pipeline per camera would look three times faster
than any board. Frames are 1920x1080 BGR (random pixels), workers 3, slots the default.

A camera is a thread that publishes a frame every 1/rate s (each camera with its own phase)
into a keep_last queue of depth 10, as the node's subscription holds them: a frame the queue
has no room for is lost (counted). A feeder thread per camera takes the oldest frame and
submits it to the pipeline on the camera's stream, blocking while it may not take a slot.
Latency is from publishing to the in-order release.

Scenarios (in one run, beside the emulated inference timed alone and, as the baseline of the
latency, one camera at 30 fps on the same pipeline: what a frame costs on this machine
whatever the number of cameras):

- ``three_cameras``: 3 cameras at 30 fps: each camera's p50/p99 latency and frames lost, with
  annotated images (someone watches every camera's image_annotated: the workers draw) and with
  detections only (the node's frames when no one watches: no 720p frame is made).
- ``six_cameras``: 6 cameras at 30 fps (180 fps offered, the workers' capacity): each
  camera's share of its rate, and the spread between the fastest and slowest camera.
- ``bursty``: one camera at 120 fps beside two at 30 fps: the two keep their rate.
- ``process_per_camera``: 3 cameras fed as fast as accepted, through one pipeline (this design)
  against one process per camera with its own pipeline, model copies and workers (the way users
  run one node per camera today; 3 workers each, the default, and 1 worker on a core of its own
  each): total frames/s, and memory: USS of every process, the frame slots (shared memory),
  and PSS. Each side runs in child processes started by this one.

    python benchmarks/multi_camera.py [--seconds 10] [--latency-ms 16.7] [--scenarios ...]
"""

import argparse
from collections import deque
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import psutil

from rk_yolo_ros.core.counters import percentiles_ms
from rk_yolo_ros.core.frame_processing import DetectionSettings, FrameStatus
from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig
from rk_yolo_ros.core.settings import RKNN_CORE_MASKS
from rk_yolo_ros.offline.throughput_benchmark import emulated_inference_alone, machine_info
from rk_yolo_ros.yolo.detector import YoloDetectorFactory

SIZE = (1920, 1080)
QUEUE_DEPTH = 10  # the node's default keep_last depth
BACKEND_LABEL = ('emulated NPU backend (fixed sleep latency + synthetic YOLO outputs; not real '
                 'inference), with its benchmark-only NPU lock: one inference at a time per '
                 'core mask across processes')
SCENARIOS = ('three_cameras', 'six_cameras', 'bursty', 'process_per_camera')
GOALS = {'three_cameras': 'every camera p50 <= 1.3 x the inference time, 0 lost',
         'six_cameras': 'every camera >= 0.9 of its rate, fastest and slowest within 10%',
         'bursty': 'the 30 fps cameras keep their full rate (>= 0.99, 0 lost)',
         'process_per_camera': 'one pipeline: at least the throughput, at most half the memory'}


def make_factory(latency_s, layout, lock_dir):
    """Return the emulated detector factory every pipeline here uses."""
    return YoloDetectorFactory(backend='emulated', emulated_latency_s=latency_s,
                               emulated_layout=layout, emulated_npu_lock_dir=lock_dir)


def random_frames(seed, count=3):
    """Return a few 1080p BGR frames of random pixels."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (SIZE[1], SIZE[0], 3), dtype=np.uint8) for _ in range(count)]


class Camera:
    """A camera publishing at a rate into a keep_last queue, and the feeder that submits."""

    def __init__(self, name, rate, frames, phase_s, seed):
        """Describe the camera; ``run`` publishes, ``feed`` submits."""
        self.name, self.rate, self.frames, self.phase_s = name, rate, frames, phase_s
        self.images = random_frames(seed)
        self.queue = deque()
        self.cond = threading.Condition()
        self.done = False
        self.lost = 0
        self.latencies = []
        self.released_ok = 0
        self.first_release = self.last_release = None

    def publish(self, started):
        """Publish ``frames`` frames at the rate from ``started`` (the camera thread)."""
        for index in range(self.frames):
            due = started + self.phase_s + index / self.rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self.cond:
                if len(self.queue) >= QUEUE_DEPTH:
                    self.queue.popleft()  # keep_last: the oldest goes
                    self.lost += 1
                self.queue.append((index, time.monotonic()))
                self.cond.notify()
        with self.cond:
            self.done = True
            self.cond.notify()

    def feed(self, pipeline, settings):
        """Submit the queued frames on this camera's stream (the feeder thread)."""
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.queue or self.done)
                if not self.queue:
                    return
                index, published = self.queue.popleft()
            pipeline.submit(self.images[index % len(self.images)],
                            meta=(self.name, index, published), settings=settings,
                            stream=self.name, timeout=None)

    def released(self, frame, now):
        """Count one released frame of this camera (the pipeline's collector thread)."""
        if frame.status is FrameStatus.OK:
            self.released_ok += 1
            self.latencies.append(now - frame.meta[2])
            self.first_release = self.first_release or now
            self.last_release = now

    def report(self, seconds):
        """Return this camera's figures."""
        p50, p99 = percentiles_ms(self.latencies)
        return {'camera': self.name, 'rate_fps': self.rate, 'published': self.frames,
                'processed': self.released_ok, 'lost': self.lost,
                'processed_fps': round(self.released_ok / seconds, 2),
                'share_of_rate': round(self.released_ok / self.frames, 4),
                'latency_p50_ms': round(p50, 2), 'latency_p99_ms': round(p99, 2)}


def run_cameras(rates, seconds, latency_s, layout, lock_dir, workers, seed=0, draw=True):
    """
    Run cameras at ``rates`` (frames/s) on one pipeline for ``seconds``; return figures.

    ``draw``: the workers make and annotate each 720p frame (as for a node whose
    image_annotated has a listener), else detections only.
    """
    settings = DetectionSettings(draw=draw)
    rng = random.Random(seed)
    cameras = [Camera(f'camera{i}', rate, int(round(rate * seconds)),
                      rng.uniform(0.0, 1.0 / rate), seed * 100 + i)
               for i, rate in enumerate(rates)]
    by_name = {camera.name: camera for camera in cameras}
    measuring = {'on': False}

    def on_frame(frame):
        if measuring['on']:
            by_name[frame.stream].released(frame, time.monotonic())

    config = PipelineConfig(workers=workers)
    me = psutil.Process()
    with FramePipeline(config, make_factory(latency_s, layout, lock_dir), on_frame) as pipeline:
        for index in range(3 * workers):  # warm up every worker and stream
            camera = cameras[index % len(cameras)]
            pipeline.submit(camera.images[0], meta=None, stream=camera.name)
        pipeline.flush()
        measuring['on'] = True
        cpu_before = me.cpu_times()
        started = time.monotonic() + 0.05
        threads = [threading.Thread(target=c.publish, args=(started,)) for c in cameras]
        threads += [threading.Thread(target=c.feed, args=(pipeline, settings)) for c in cameras]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pipeline.flush()
        cpu_after = me.cpu_times()
        stats = pipeline.stats()
    main_cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    reports = [camera.report(seconds) for camera in cameras]
    return {'cameras': reports, 'offered_fps': sum(rates),
            'processed_fps': round(sum(r['processed'] for r in reports) / seconds, 2),
            'frames_failed': stats.counters.failed,
            'main_process_cpu_ms_per_frame': round(
                main_cpu * 1000.0 / max(1, sum(r['processed'] for r in reports)), 3)}


def spread(values):
    """Return (max - min) / max of positive values."""
    return round((max(values) - min(values)) / max(values), 4) if values else 0.0


# ------------------------------------------------------------------- one process per camera
def child_main(spec):
    """
    Child process: one pipeline fed as fast as accepted from one thread per camera.

    Prints 'ready', waits for a line on stdin, runs, prints one JSON line with its figures.
    """
    logging.basicConfig(level=logging.ERROR)
    cameras = spec['cameras']
    config = PipelineConfig(workers=spec['workers'],
                            core_masks=tuple(spec.get('core_masks') or RKNN_CORE_MASKS))
    released = {name: 0 for name in cameras}
    last = {'t': 0.0}

    def on_frame(frame):
        if frame.meta is not None and frame.status is FrameStatus.OK:
            released[frame.stream] += 1
            last['t'] = time.monotonic()

    factory = make_factory(spec['latency_s'], spec['layout'], spec['lock_dir'])
    with FramePipeline(config, factory, on_frame) as pipeline:
        images = random_frames(spec['seed'])
        for index in range(2 * spec['workers']):
            pipeline.submit(images[index % len(images)], stream=cameras[index % len(cameras)])
        pipeline.flush()
        print('ready', flush=True)
        sys.stdin.readline()

        def feed(name):
            for index in range(spec['frames']):
                pipeline.submit(images[index % len(images)], meta=index, stream=name)
        started = time.monotonic()
        threads = [threading.Thread(target=feed, args=(name,)) for name in cameras]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pipeline.flush()
        slot_bytes = config.slot_count() * (config.staging_bytes()
                                            + 3 * config.output_height * config.max_output_width)
    print(json.dumps({'started': started, 'ended': last['t'], 'processed': released,
                      'frame_slots_bytes': slot_bytes}), flush=True)
    return 0


def _tree(process):
    return [process] + process.children(recursive=True)


def run_processes(specs):
    """Start one child per spec, run them together, sample their memory; return figures."""
    here = os.path.abspath(__file__)
    children = [subprocess.Popen([sys.executable, here, '--child', json.dumps(spec)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 universal_newlines=True) for spec in specs]
    try:
        for child in children:
            line = child.stdout.readline().strip()
            if line != 'ready':
                raise RuntimeError(f'a benchmark child did not start: {line!r}')
        handles = [psutil.Process(child.pid) for child in children]
        peak = {'uss': 0, 'pss': 0, 'processes': 0}
        for child in children:
            child.stdin.write('go\n')
            child.stdin.flush()
        while any(child.poll() is None for child in children):
            uss = pss = count = 0
            for handle in handles:
                try:
                    for process in _tree(handle):
                        info = process.memory_full_info()
                        uss, pss, count = uss + info.uss, pss + info.pss, count + 1
                except psutil.Error:
                    pass  # finished meanwhile
            peak = {'uss': max(peak['uss'], uss), 'pss': max(peak['pss'], pss),
                    'processes': max(peak['processes'], count)}
            time.sleep(0.25)
        results = [json.loads(child.stdout.readline()) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
    frames = sum(sum(r['processed'].values()) for r in results)
    seconds = max(r['ended'] for r in results) - min(r['started'] for r in results)
    slots = sum(r['frame_slots_bytes'] for r in results)
    return {'processes': len(specs), 'workers': sum(s['workers'] for s in specs),
            'processes_with_workers': peak['processes'], 'frames': frames,
            'seconds': round(seconds, 2), 'total_fps': round(frames / seconds, 2),
            'per_camera_processed': {name: count for r in results
                                     for name, count in r['processed'].items()},
            'uss_mb': round(peak['uss'] / 2 ** 20, 1),
            'frame_slots_mb': round(slots / 2 ** 20, 1),
            'uss_plus_frame_slots_mb': round((peak['uss'] + slots) / 2 ** 20, 1),
            'pss_mb': round(peak['pss'] / 2 ** 20, 1)}


def process_per_camera(frames, latency_s, layout, lock_dir, workers):
    """Three cameras flat out: one pipeline against one process (and pipeline) per camera."""
    names = ['camera0', 'camera1', 'camera2']
    base = {'frames': frames, 'latency_s': latency_s, 'layout': layout, 'lock_dir': lock_dir,
            'seed': 1}
    ours = run_processes([dict(base, cameras=names, workers=workers)])
    per_process = run_processes([dict(base, cameras=[name], workers=workers)
                                 for name in names])
    one_core_each = run_processes([dict(base, cameras=[name], workers=1,
                                        core_masks=[RKNN_CORE_MASKS[i % 3]])
                                   for i, name in enumerate(names)])
    return {
        'one_pipeline': ours,
        'process_per_camera': per_process,
        'process_per_camera_one_worker_each': one_core_each,
        'throughput_ratio': round(ours['total_fps'] / per_process['total_fps'], 3),
        'memory_ratio_uss': round(ours['uss_mb'] / per_process['uss_mb'], 3),
        'memory_ratio_uss_plus_frame_slots': round(
            ours['uss_plus_frame_slots_mb'] / per_process['uss_plus_frame_slots_mb'], 3),
        'one_worker_each': {
            'throughput_ratio': round(ours['total_fps'] / one_core_each['total_fps'], 3),
            'memory_ratio_uss': round(ours['uss_mb'] / one_core_each['uss_mb'], 3),
            'memory_ratio_uss_plus_frame_slots': round(
                ours['uss_plus_frame_slots_mb'] / one_core_each['uss_plus_frame_slots_mb'],
                3)}}


# ---------------------------------------------------------------------------------- main
def run_benchmark(scenarios, seconds, latency_ms, layout, workers, flat_frames):
    """Run the scenarios; return the JSON-ready report."""
    latency_s = latency_ms / 1000.0
    load_before = os.getloadavg()
    report = {'benchmark': 'multi_camera', 'backend': BACKEND_LABEL,
              'machine': dict(machine_info(), load_average_1_5_15_before=load_before),
              'inputs': {'frame_size': list(SIZE), 'workers': workers,
                         'emulated_latency_ms': latency_ms, 'emulated_output_layout': layout,
                         'seconds_per_scenario': seconds, 'camera_queue': f'keep_last '
                         f'{QUEUE_DEPTH}', 'frames_per_camera_flat_out': flat_frames,
                         'start_method': 'spawn',
                         'note': 'worker CPU pinning needs CPUs 4-7 (RK3588 big cores); '
                                 'where absent the workers run unpinned'},
              'baseline': emulated_inference_alone(latency_s, layout),
              'goals': {name: GOALS[name] for name in scenarios}, 'results': {}}
    results = report['results']
    with tempfile.TemporaryDirectory(prefix='rk_yolo_bench_npu_') as lock_dir:
        if 'three_cameras' in scenarios:
            results['three_cameras'] = three = {}
            report['baseline']['one_camera'] = {}
            for kind, draw in (('annotated', True), ('detections_only', False)):
                one = run_cameras([30.0], seconds, latency_s, layout, lock_dir, workers,
                                  draw=draw)['cameras'][0]
                one['p50_over_inference'] = round(one['latency_p50_ms'] / latency_ms, 3)
                report['baseline']['one_camera'][kind] = one
                three[kind] = run_cameras([30.0] * 3, seconds, latency_s, layout, lock_dir,
                                          workers, draw=draw)
                for camera in three[kind]['cameras']:
                    camera['p50_over_inference'] = round(camera['latency_p50_ms'] / latency_ms,
                                                         3)
                    camera['p50_over_one_camera'] = round(
                        camera['latency_p50_ms'] / one['latency_p50_ms'], 3)
                three[kind]['met'] = all(c['p50_over_inference'] <= 1.3 and c['lost'] == 0
                                         for c in three[kind]['cameras'])
            three['met'] = all(three[kind]['met'] for kind in ('annotated', 'detections_only'))
        if 'six_cameras' in scenarios:
            six = run_cameras([30.0] * 6, seconds, latency_s, layout, lock_dir, workers)
            shares = [c['share_of_rate'] for c in six['cameras']]
            six['min_share_of_rate'] = min(shares)
            six['spread_fastest_to_slowest'] = spread([c['processed'] for c in six['cameras']])
            six['met'] = min(shares) >= 0.9 and six['spread_fastest_to_slowest'] <= 0.1
            results['six_cameras'] = six
        if 'bursty' in scenarios:
            bursty = run_cameras([120.0, 30.0, 30.0], seconds, latency_s, layout, lock_dir,
                                 workers)
            steady = bursty['cameras'][1:]
            bursty['met'] = all(c['share_of_rate'] >= 0.99 and c['lost'] == 0 for c in steady)
            results['bursty'] = bursty
        if 'process_per_camera' in scenarios:
            compared = process_per_camera(flat_frames, latency_s, layout, lock_dir, workers)
            compared['met'] = (compared['throughput_ratio'] >= 1.0
                               and compared['memory_ratio_uss_plus_frame_slots'] <= 0.5
                               and compared['memory_ratio_uss'] <= 0.5)
            results['process_per_camera'] = compared
    report['machine']['load_average_1_5_15_after'] = os.getloadavg()
    return report


def main(argv=None):
    """Parse arguments, run, print JSON; return 1 if a goal was not met."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--scenarios', nargs='+', choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument('--seconds', type=float, default=10.0,
                        help='how long the cameras publish in each scenario')
    parser.add_argument('--latency-ms', type=float, default=16.7,
                        help='emulated inference latency (16.7 ms: yolo11n on one RK3588 core)')
    parser.add_argument('--layout', choices=['ultralytics', 'rknn_split'], default='rknn_split',
                        help='shape of the emulated raw outputs')
    parser.add_argument('--workers', type=int, default=3)
    parser.add_argument('--flat-out-frames', type=int, default=300,
                        help='frames per camera in process_per_camera')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(json.loads(args.child))
    logging.basicConfig(level=logging.ERROR)
    report = run_benchmark(args.scenarios, args.seconds, args.latency_ms, args.layout,
                           args.workers, args.flat_out_frames)
    print(json.dumps(report, indent=2))
    return 0 if all(result['met'] for result in report['results'].values()) else 1


if __name__ == '__main__':
    sys.exit(main())
