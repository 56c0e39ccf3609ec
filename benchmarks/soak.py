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
Memory soak: run one entry point for a long stream and report each process's memory (JSON).

Entry points (the first argument), all with the EMULATED NPU backend (fixed latency, synthetic
outputs; not real inference), 3 workers and 16.7 ms by default:

- ``pipeline``: the FramePipeline fed 1080p frames as fast as it takes them, as ``rk-yolo bench``
  does, in a child process of this script;
- ``node``: yolo_node under ``ros2 launch rk_yolo_ros yolo.launch.py backend:=emulated``, fed
  720p bgr8 Images (Reliable, keep_all) by a publisher in this script at a steady ``--rate-hz``;
  set it just under what the node sustains (``publisher_fell_behind`` counts the times the
  publisher could not keep the rate);
- ``run``: ``rk-yolo run`` on a long video (a generated 2 s 1080p clip, looped with an ffconcat
  list), writing JSON lines into a pipe this script counts.

Every ``--sample-s`` it reads the USS (memory unique to a process, via psutil) of the entry
point's process and of each of its children (workers, multiprocessing's resource tracker); this
script itself is never measured. USS also counts the pages of shared libraries that only this
process maps at the moment, which come and go by tens of kB as other processes on the machine
use the same libraries (OpenCV, numpy); so it also reads each process's anonymous memory (heap,
malloc arenas, buffers: where a leak grows) from /proc/<pid>/smaps_rollup, reported the same
way under ``anonymous_memory``. For ``node`` each sample is taken at rest: the publisher pauses
until the node has released every image (a few seconds at most), since images queued in the
middleware and in flight (2.6 MB each at 720p) swing the USS by several MB.

Samples before the end of the warm-up are left out: ``--warmup-s`` seconds and ``--warmup-frames``
frames, whichever ends later (the processes' memory settles within about 10,000 frames: a worker's
anonymous memory grows by about 0.3 MB by then, and stays within a few kB from there on to 50,000
frames). Reported per process and for the whole tree: the USS after warm-up, at the end and at its
peak, the slope of a least-squares line of USS against frames released, and the robust slope
(Theil-Sen: the median of the slopes between every two samples, with its 95% interval), in MB per
10,000 frames, and the slope within levels (``level_slope``). Frames in flight and frame-sized
buffers that the allocator keeps or gives back put samples on levels one frame apart, and how
often each level is hit can drift over a run (``run`` at 1080p: more samples with a frame more
in flight late in the run), which tilts a least-squares line and the Theil-Sen median alike;
the level slope fits each level apart and pools them, while a steady leak, which keeps the
samples contiguous, still shows in it. The goal (issue #17) is a tree level slope of at most
``GOAL_MB_PER_10K`` over 30 minutes at 3 workers; ``within_goal`` says it for the USS and for
the anonymous memory (on a busy machine the USS can miss it by library pages alone; then the
anonymous memory is the one to trust). The resource tracker, an idle Python process in the same
tree, is the in-run baseline: its slopes are the noise of the measurement. Also reported: fps
after warm-up, frames lost (sent in but never released as processed or failed) and failed. Exit
code 1 if a frame was lost or failed.

glibc's malloc raises its mmap threshold to the largest mmapped block freed so far, so frame-sized
buffers freed once are then kept in its heaps and reused, in steps of one frame. ``--env
MALLOC_MMAP_THRESHOLD_=131072`` pins the threshold for the measured processes: their USS then
follows what they hold (the node at rest: +-0.4 MB instead of steps of 2.6 MB).

The 30-minute soaks, on a quiet machine, from the repository root (for ``node``, ROS sourced
and the package built in a colcon overlay, e.g. ``colcon build --symlink-install``)::

    python benchmarks/soak.py pipeline --minutes 30 > soak_pipeline.json
    python benchmarks/soak.py run --minutes 30 > soak_run.json
    source /opt/ros2_ws/ros_env.sh && source install/setup.bash
    python benchmarks/soak.py node --minutes 30 --rate-hz 60 > soak_node.json

``--frames N`` stops after N frames instead (whichever comes first); add
``--env MALLOC_MMAP_THRESHOLD_=131072`` for the allocator-pinned variant.
"""

import argparse
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import psutil

import rk_yolo_ros
from rk_yolo_ros.core import settings
from rk_yolo_ros.offline.throughput_benchmark import (BACKEND_LABEL, machine_info,
                                                      process_memory)

GOAL_MB_PER_10K = 0.05
MB = 2 ** 20
PER_FRAMES = 10000
CLIP_FRAMES = 60  # the looped clip of ``run``: 2 s at 30 fps
NODE_IMAGE_TOPIC = '/soak/image_raw'
START_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 60.0
LEVEL_GAP_MB = 1.0  # less than any frame-sized buffer (a 640x640 model input: 1.2 MB)
SETTLE_TIMEOUT_S = 5.0  # node: longest pause of the publisher for a sample at rest
MAX_FPS = 1000  # only to size the ffconcat list of a timed ``run``
# The measured process of ``pipeline`` runs ``-c`` code, so that its spawned workers import
# nothing of this script (they would, were it their parent's __main__).
PIPELINE_CHILD = ('import sys; sys.path.insert(0, sys.argv[1]); import soak; '
                  'soak.pipeline_child(sys.argv[2:])')


# ------------------------------------------------------------------------------ measuring
def process_role(process, root_pid):
    """Name a process of the measured tree by what it is."""
    if process.pid == root_pid:
        return 'main'
    try:
        command = ' '.join(process.cmdline())
    except psutil.Error:
        return 'gone'
    if 'resource_tracker' in command:
        return 'resource_tracker'
    if 'multiprocessing' in command:
        return 'worker'
    return process.name()


def anonymous_memory(pid):
    """Return a process's anonymous memory in bytes (heap, arenas, buffers); None if unknown."""
    try:
        with open(f'/proc/{pid}/smaps_rollup') as rollup:
            for line in rollup:
                if line.startswith('Anonymous:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def sample_tree(root):
    """Return ({'<role> <pid>': USS in MB}, {... anonymous memory in MB}) of a process tree."""
    try:
        processes = [root] + root.children(recursive=True)
    except psutil.Error:
        return {}, {}
    unique, anonymous = {}, {}
    for process in processes:
        name = f'{process_role(process, root.pid)} {process.pid}'
        uss = process_memory(process, unique=True)
        if uss is not None:
            unique[name] = round(uss / MB, 4)
        anon = anonymous_memory(process.pid)
        if anon is not None:
            anonymous[name] = round(anon / MB, 4)
    return unique, anonymous


def sample_until(root, frames, done, deadline, max_frames, sample_s, settle=None):
    """
    Sample the tree every ``sample_s`` until the deadline, ``max_frames`` or ``done()``.

    ``frames()`` returns the frames released so far. With ``settle``, each sample is taken
    between ``resume = settle()`` and ``resume()``. Returns the samples, each
    {'t': seconds since the start, 'frames': ..., 'mb': USS, 'anon_mb': anonymous memory}.
    """
    samples = []
    started = time.monotonic()
    while True:
        now = time.monotonic()
        resume = settle() if settle is not None else None
        unique, anonymous = sample_tree(root)
        samples.append({'t': round(now - started, 2), 'frames': frames(), 'mb': unique,
                        'anon_mb': anonymous})
        if resume is not None:
            resume()
        if now >= deadline or (max_frames and samples[-1]['frames'] >= max_frames) or done():
            return samples
        time.sleep(max(0.0, min(sample_s - (time.monotonic() - now), deadline - now)))


def level_slope(frames, values, gap_mb=LEVEL_GAP_MB):
    """
    Return the slope of ``values`` against ``frames`` within levels, and the levels' count.

    A sample is taken with some frames in flight, each a frame-sized buffer (2.6 MB at 720p,
    5.9 MB at 1080p): the samples fall on levels that far apart, and how often each level is
    hit can drift over a run, which tilts a line through all of them (least squares and
    Theil-Sen alike). Samples whose sorted values lie within ``gap_mb`` of each other form a
    level; the slope is fitted within each level (each its own offset) and pooled. A steady
    leak keeps the values contiguous (one level: the least-squares slope), so it still shows.
    """
    order = np.argsort(values)
    breaks = np.flatnonzero(np.diff(values[order]) > gap_mb) + 1
    numerator = denominator = 0.0
    levels = 0
    for members in np.split(order, breaks):
        if len(members) < 3:
            continue  # a rare level: too few samples for a slope of its own
        levels += 1
        x = frames[members] - frames[members].mean()
        numerator += float(np.dot(x, values[members] - values[members].mean()))
        denominator += float(np.dot(x, x))
    return (numerator / denominator if denominator > 0 else None), levels


def _series_figures(points):
    """Start, end, peak, least-squares, Theil-Sen and within-level slopes of (frames, MB)."""
    frames, values = (np.array(column, np.float64) for column in zip(*points))
    figures = {'start_mb': round(float(values[0]), 3), 'end_mb': round(float(values[-1]), 3),
               'peak_mb': round(float(values.max()), 3), 'slope_mb_per_10k_frames': None,
               'robust_slope_mb_per_10k_frames': None, 'robust_slope_ci95': None,
               'level_slope_mb_per_10k_frames': None, 'levels': None,
               'samples': len(points)}
    if len(points) >= 3 and frames[-1] > frames[0]:
        figures['slope_mb_per_10k_frames'] = round(
            float(np.polyfit(frames, values, 1)[0]) * PER_FRAMES, 4)
        from scipy.stats import theilslopes  # here: the measured processes need not load it

        slope, _, low, high = theilslopes(values, frames)
        figures['robust_slope_mb_per_10k_frames'] = round(float(slope) * PER_FRAMES, 4)
        figures['robust_slope_ci95'] = [round(float(low) * PER_FRAMES, 4),
                                        round(float(high) * PER_FRAMES, 4)]
        within, levels = level_slope(frames, values)
        if within is not None:
            figures['level_slope_mb_per_10k_frames'] = round(within * PER_FRAMES, 4)
        figures['levels'] = levels
    return figures


def memory_figures(samples, warmup_s, warmup_frames=0, key='mb'):
    """Return the per-process and tree figures of samples[key] after warm-up."""
    kept = [s for s in samples
            if s['t'] >= warmup_s and s['frames'] >= warmup_frames and s[key]]
    if len(kept) < 3:
        raise RuntimeError(f'only {len(kept)} sample(s) after the warm-up ({warmup_s} s, '
                           f'{warmup_frames} frames): run '
                           'longer or sample more often')
    names = sorted({name for s in kept for name in s[key]},
                   key=lambda n: (n.split()[0] != 'main', n))
    processes = []
    for name in names:
        role, pid = name.rsplit(' ', 1)
        points = [(s['frames'], s[key][name]) for s in kept if name in s[key]]
        processes.append(dict(process=role, pid=int(pid), **_series_figures(points)))
    tree = _series_figures([(s['frames'], sum(s[key].values())) for s in kept])
    span_s = kept[-1]['t'] - kept[0]['t']
    frames = kept[-1]['frames'] - kept[0]['frames']
    return {'measured_from_s': kept[0]['t'], 'measured_s': round(span_s, 1),
            'frames_measured': frames,
            'fps': round(frames / span_s, 2) if span_s > 0 else 0.0,
            'tree': tree, 'processes': processes}


# ------------------------------------------------------------------------------ pipeline
def pipeline_child(argv):
    """
    Feed frames until stdin closes: the measured process of ``pipeline``.

    Each line read on stdin is answered on stdout with the frames released so far; at EOF it
    stops feeding, lets the pipeline drain and writes its counters as one JSON line.
    """
    from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig
    from rk_yolo_ros.yolo.detector import YoloDetectorFactory

    workers, latency_ms, layout, size = argv
    released = [0]
    stop = threading.Event()

    def answer_requests():
        for _ in sys.stdin:
            print(released[0], flush=True)
        stop.set()

    def on_frame(frame):
        released[0] += 1

    factory = YoloDetectorFactory(backend='emulated', emulated_latency_s=float(latency_ms) / 1e3,
                                  emulated_layout=layout)
    width, height = settings.parse_size(size)
    rng = np.random.default_rng(0)
    inputs = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(4)]
    with FramePipeline(PipelineConfig(workers=int(workers)), factory, on_frame) as pipeline:
        threading.Thread(target=answer_requests, daemon=True).start()
        index = 0
        while not stop.is_set():
            pipeline.submit(inputs[index % len(inputs)])
            index += 1
        pipeline.flush()
        counters = pipeline.stats().counters
    print(json.dumps({'accepted': counters.accepted, 'ok': counters.ok,
                      'failed': counters.failed, 'cancelled': counters.cancelled}), flush=True)


def soak_pipeline(args):
    """Entry ``pipeline``: the pipeline in a child process of this script, measured from here."""
    command = [sys.executable, '-c', PIPELINE_CHILD, os.path.dirname(os.path.abspath(__file__)),
               str(args.workers), str(args.latency_ms), args.layout, '%dx%d' % args.source_size]
    child = subprocess.Popen(command, env=_measured_env(args), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)

    def released():
        try:
            child.stdin.write('\n')
            child.stdin.flush()
            line = child.stdout.readline()
        except BrokenPipeError:
            line = ''
        if not line:
            raise RuntimeError(f'the pipeline process ended early (exit code {child.wait()})')
        return int(line)

    try:
        samples = sample_until(psutil.Process(child.pid), released,
                               lambda: child.poll() is not None, _deadline(args), args.frames,
                               args.sample_s)
        child.stdin.close()
        counters = json.loads(child.stdout.readline())
        child.wait(DRAIN_TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    outcome = {'frames_in': counters['accepted'], 'frames_ok': counters['ok'],
               'frames_failed': counters['failed'],
               'frames_lost': counters['accepted'] - counters['ok'] - counters['failed']}
    inputs = {'source_size': list(args.source_size), 'emulated_output_layout': args.layout,
              'feed': 'as fast as the pipeline accepts'}
    return samples, outcome, inputs


# ---------------------------------------------------------------------------------- node
def soak_node(args):
    """Entry ``node``: yolo_node under ros2 launch, fed by a steady publisher from here."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    os.environ['ROS_DOMAIN_ID'] = str(args.domain_id)
    command = ['ros2', 'launch', 'rk_yolo_ros', 'yolo.launch.py', 'backend:=emulated',
               f'workers:={args.workers}', f'emulated_latency_ms:={args.latency_ms}',
               'qos_reliability:=reliable', 'qos_history:=keep_all',
               f'image_topic:={NODE_IMAGE_TOPIC}']
    launch = subprocess.Popen(command, env=_measured_env(args), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=args.domain_id)
    node = rclpy.create_node('soak_publisher', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    counters = {}

    def diagnostics_callback(message):
        for status in message.status:
            if status.name.endswith('yolo_node: pipeline'):
                values = {item.key: item.value for item in status.values}
                if 'frames_accepted' in values:
                    counters.update({key: int(values[key]) for key in (
                        'frames_accepted', 'frames_ok', 'frames_failed', 'frames_cancelled',
                        'frames_rejected', 'frames_lost', 'frames_undelivered')})

    qos = QoSProfile(depth=10, history=HistoryPolicy.KEEP_ALL,
                     reliability=ReliabilityPolicy.RELIABLE)
    publisher = node.create_publisher(Image, NODE_IMAGE_TOPIC, qos)
    node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics_callback, 10)
    spinner.start()
    width, height = args.source_size
    message = Image(height=height, width=width, encoding='bgr8', step=width * 3)
    message.header.frame_id = 'soak_camera'
    pixels = np.random.default_rng(0).integers(0, 255, height * width * 3, dtype=np.uint8)
    message.data.frombytes(pixels.tobytes())
    published = [0]
    behind = [0]
    stop = threading.Event()
    resumed = threading.Event()
    resumed.set()

    def publish_steadily():
        period = 1.0 / args.rate_hz
        next_at = time.monotonic()
        while not stop.is_set():
            if not resumed.is_set():
                resumed.wait()
                next_at = time.monotonic()
            stamp_ns = published[0] * int(period * 1e9)
            message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
            publisher.publish(message)
            published[0] += 1
            next_at += period
            wait = next_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -period:  # fell behind (publish blocked): do not burst to catch up
                behind[0] += 1
                next_at = time.monotonic()

    def settle():
        # Each sample at rest: every image published has been released, so images queued in
        # the middleware and in flight (several MB each) do not swing the figures.
        resumed.clear()
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline and _accounted(counters) < published[0]:
            time.sleep(0.05)
        return resumed.set

    feeder = threading.Thread(target=publish_steadily, daemon=True)
    try:
        root = _wait_for_node(launch, publisher, counters)
        feeder.start()
        samples = sample_until(root, lambda: counters['frames_ok'] + counters['frames_failed'],
                               lambda: launch.poll() is not None, _deadline(args), args.frames,
                               args.sample_s, settle if args.sample_at_rest else None)
        stop.set()
        resumed.set()
        feeder.join()
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline and launch.poll() is None and \
                _accounted(counters) < published[0]:
            time.sleep(0.5)
        time.sleep(2.0)  # one more diagnostics period or two
        final = dict(counters)
    finally:
        stop.set()
        _stop_launch(launch)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    out = final['frames_ok'] + final['frames_failed']
    outcome = {'frames_in': published[0], 'frames_ok': final['frames_ok'],
               'frames_failed': final['frames_failed'], 'frames_lost': published[0] - out,
               'node_counters': final, 'publisher_fell_behind': behind[0],
               'publish_rate_hz': round(published[0] / samples[-1]['t'], 2)
               if samples[-1]['t'] > 0 else 0.0}
    inputs = {'source_size': list(args.source_size), 'encoding': 'bgr8',
              'rate_hz': args.rate_hz, 'qos': 'reliable keep_all',
              'samples_at_rest': args.sample_at_rest,
              'command': ' '.join(command), 'rmw': os.environ.get('RMW_IMPLEMENTATION', ''),
              'ros_distro': os.environ.get('ROS_DISTRO', '')}
    return samples, outcome, inputs


def _accounted(counters):
    """Return how many images the node's counters account for (released, refused or lost)."""
    return sum(counters.get(key, 0) for key in (
        'frames_ok', 'frames_failed', 'frames_cancelled', 'frames_rejected', 'frames_lost'))


def _wait_for_node(launch, publisher, counters):
    """Wait until yolo_node subscribes and reports diagnostics; return its process."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while publisher.get_subscription_count() == 0 or 'frames_accepted' not in counters:
        if launch.poll() is not None:
            raise RuntimeError('ros2 launch ended: ' +
                               launch.stderr.read().decode(errors='replace')[-3000:])
        if time.monotonic() > deadline:
            raise RuntimeError(f'yolo_node did not come up within {START_TIMEOUT_S:.0f} s')
        time.sleep(0.2)
    for process in psutil.Process(launch.pid).children(recursive=True):
        try:
            if any('yolo_node' in part for part in process.cmdline()[:2]):
                return process
        except psutil.Error:
            pass
    raise RuntimeError('yolo_node answers but its process was not found under ros2 launch')


def _stop_launch(launch):
    """Stop ros2 launch and the node as Ctrl-C would; kill what is left after 30 s."""
    if launch.poll() is None:
        os.killpg(launch.pid, signal.SIGINT)
        try:
            launch.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(launch.pid, signal.SIGKILL)
            launch.wait()


# ----------------------------------------------------------------------------------- run
def make_looped_video(folder, size, repeats):
    """Write a 2 s mp4v clip of moving shapes and an ffconcat list playing it ``repeats`` times."""
    import cv2

    width, height = size
    clip = folder / 'clip.mp4'
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*'mp4v'), 30.0, (width, height))
    if not writer.isOpened():
        raise RuntimeError('OpenCV cannot write an mp4v video here')
    rows, columns = np.mgrid[0:height, 0:width]
    for index in range(CLIP_FRAMES):
        frame = np.dstack([((columns + 8 * index) % 256).astype(np.uint8),
                           (rows % 256).astype(np.uint8),
                           np.full((height, width), index * 4 % 256, np.uint8)])
        left = width // 20 + index * width // 200
        cv2.rectangle(frame, (left, height // 5), (left + width // 6, height // 2),
                      (0, 0, 255), -1)
        writer.write(frame)
    writer.release()
    playlist = folder / 'looped.ffconcat'
    playlist.write_text('ffconcat version 1.0\n' + f'file {clip.name}\n' * repeats)
    return playlist


def soak_run(args):
    """Entry ``run``: ``rk-yolo run`` on a looped video, JSON lines counted through a pipe."""
    with tempfile.TemporaryDirectory(prefix='rk_yolo_soak_') as folder:
        folder = pathlib.Path(folder)
        wanted = args.frames or math.ceil(args.minutes * 60 * MAX_FPS)
        playlist = make_looped_video(folder, args.source_size, wanted // CLIP_FRAMES + 1)
        jsonl, summary_path = folder / 'frames.jsonl', folder / 'summary.json'
        os.mkfifo(jsonl)
        command = [sys.executable, '-m', 'rk_yolo_ros', 'run', str(playlist),
                   '--backend', 'emulated', '--workers', str(args.workers),
                   '--emulated-latency-ms', str(args.latency_ms), '--jsonl', str(jsonl),
                   '--summary-json', str(summary_path), '--progress', 'off']
        if args.frames:
            command += ['--max-frames', str(args.frames)]
        lines = [0]

        def count_lines():
            with open(jsonl, 'rb', buffering=0) as stream:  # waits for rk-yolo run to open it
                for chunk in iter(lambda: stream.read(1 << 20), b''):
                    lines[0] += chunk.count(b'\n')

        counter = threading.Thread(target=count_lines, daemon=True)
        counter.start()
        run = subprocess.Popen(command, env=_measured_env(args), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        try:
            samples = sample_until(psutil.Process(run.pid), lambda: lines[0],
                                   lambda: run.poll() is not None, _deadline(args), None,
                                   args.sample_s)
            if run.poll() is None:
                run.send_signal(signal.SIGINT)  # stop reading, finish the frames in flight
            _, errors = run.communicate(timeout=DRAIN_TIMEOUT_S)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        counter.join(DRAIN_TIMEOUT_S)
        if not summary_path.exists():
            raise RuntimeError(f'rk-yolo run wrote no summary (exit code {run.returncode}): '
                               + errors.decode(errors='replace')[-3000:])
        summary = json.loads(summary_path.read_text())
    out = summary['processed'] + summary['failed']
    outcome = {'frames_in': summary['frames_read'], 'frames_ok': summary['processed'],
               'frames_failed': summary['failed'], 'frames_lost': summary['frames_read'] - out,
               'jsonl_lines': lines[0], 'exit_code': run.returncode,
               'stopped_by': summary['stopped_by'] or 'end of the video',
               'run_fps': round(summary['fps'], 2)}
    inputs = {'source': f'{CLIP_FRAMES}-frame mp4v clip, looped by an ffconcat list',
              'source_size': list(args.source_size), 'outputs': 'jsonl (into a pipe)',
              'command': ' '.join(command[1:])}
    return samples, outcome, inputs


# ---------------------------------------------------------------------------------- main
def _measured_env(args):
    """Return the measured processes' environment: this script's rk_yolo_ros, and --env."""
    package_root = str(pathlib.Path(rk_yolo_ros.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [package_root] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    env.update(args.env)
    return env


def _name_value(text):
    """Parse NAME=VALUE."""
    name, equals, value = text.partition('=')
    if not name or not equals:
        raise argparse.ArgumentTypeError(f'expected NAME=VALUE, got {text!r}')
    return name, value


def _deadline(args):
    return time.monotonic() + args.minutes * 60.0


def main(argv=None):
    """Parse arguments, soak one entry point, print JSON; return 1 if a frame was lost."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('entry', choices=('pipeline', 'node', 'run'))
    parser.add_argument('--minutes', type=float, default=5.0,
                        help='run time, warm-up included (default 5; the goal is for 30)')
    parser.add_argument('--frames', type=int, default=None,
                        help='stop after this many frames released (whichever comes first)')
    parser.add_argument('--warmup-frames', type=int, default=10000,
                        help='samples before this many frames are left out (default 10000)')
    parser.add_argument('--warmup-s', type=float, default=60.0,
                        help='samples in the first seconds are left out (default 60)')
    parser.add_argument('--sample-s', type=float, default=5.0, help='sampling period')
    parser.add_argument('--workers', type=int, default=3)
    parser.add_argument('--latency-ms', type=float, default=16.7,
                        help='emulated inference latency (16.7 ms: yolo11n on one RK3588 core)')
    parser.add_argument('--source-size', type=settings.parse_size, default=None,
                        help='input frames WxH (default 1920x1080; node: 1280x720)')
    parser.add_argument('--layout', choices=['ultralytics', 'rknn_split'], default='rknn_split',
                        help='pipeline: shape of the emulated raw outputs')
    parser.add_argument('--rate-hz', type=float, default=30.0,
                        help='node: publishing rate (set it just under what the node sustains)')
    parser.add_argument('--domain-id', type=int, default=58, help='node: ROS_DOMAIN_ID')
    parser.add_argument('--sample-at-rest', action=argparse.BooleanOptionalAction, default=True,
                        help='node: pause the publisher for each sample until every image is '
                        'released (default; images in flight swing the USS by several MB)')
    parser.add_argument('--env', type=_name_value, action='append', default=[],
                        metavar='NAME=VALUE', help='environment variable for the measured '
                        'processes (repeatable), e.g. MALLOC_MMAP_THRESHOLD_=131072')
    args = parser.parse_args(argv)
    if args.source_size is None:
        args.source_size = (1280, 720) if args.entry == 'node' else (1920, 1080)
    soak = {'pipeline': soak_pipeline, 'node': soak_node, 'run': soak_run}[args.entry]
    samples, outcome, inputs = soak(args)
    memory = memory_figures(samples, args.warmup_s, args.warmup_frames)
    anonymous = memory_figures(samples, args.warmup_s, args.warmup_frames, 'anon_mb')
    within = {}
    for name, figures in (('uss', memory), ('anonymous', anonymous)):
        slope = figures['tree']['level_slope_mb_per_10k_frames']
        within[name] = slope is not None and slope <= GOAL_MB_PER_10K
    report = {
        'benchmark': 'soak',
        'entry': args.entry,
        'backend': BACKEND_LABEL,
        'machine': machine_info(),
        'inputs': dict(inputs, workers=args.workers, emulated_latency_ms=args.latency_ms,
                       minutes=args.minutes, frames=args.frames, warmup_s=args.warmup_s,
                       warmup_frames=args.warmup_frames,
                       sample_s=args.sample_s, env=dict(args.env),
                       memory='USS (psutil); anonymous_memory: Anonymous of '
                       '/proc/<pid>/smaps_rollup; MB = 2**20 bytes'),
        'goal_mb_per_10k_frames': GOAL_MB_PER_10K,
        'within_goal': within,
        'outcome': outcome,
        'memory': memory,
        'anonymous_memory': anonymous,
        'samples': samples,
    }
    print(json.dumps(report, indent=2))
    return 1 if outcome['frames_lost'] or outcome['frames_failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
