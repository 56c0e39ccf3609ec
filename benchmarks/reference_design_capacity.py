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
Capacity (frames/s) of our pipeline and of the reference design, side by side, in one run.

With a 1 ms emulated NPU the NPU is not the limit: what is measured is the CPU work around it,
how much of it each design does per frame and how well it spreads over the cores. Both designs
get the same 1920x1080 frames (from memory), the same emulated NPU (``EmulatedBackend``: the
RKNN model-zoo split-head outputs of an 80-class model, after a 1 ms sleep), and both hand an
annotated 1280x720 frame to the consumer, in frame order, for every frame.

The reference design is the architecture of the seed guide (``/work/shared/reference``),
written anew here for this comparison (none of it is in the package), kept to what it does:

- a reader process resizes each frame to 1280x720, creates a new shared-memory segment for it,
  copies it in, and puts (id, name, shape) on a bounded ``multiprocessing.Queue`` (it blocks
  when the queue is full: no frame is skipped);
- N worker processes (fork) attach the segment, stretch the frame to 640x640, convert it to
  RGB, run the NPU, post-process as the guide does (``postprocess.reference_design_post_process``:
  DFL for every anchor, class-agnostic ``cv2.dnn.NMSBoxes``) and put the boxes on one result
  queue;
- the main process reorders the results by frame id, attaches each segment, copies the frame
  out, scales and draws the boxes and a three-line panel, then closes and unlinks the segment.

Not reproduced: the guide's ``nice`` and its CPU pinning (CPUs 4-7 are absent on most machines,
where its pinning silently does nothing; ours runs unpinned here too), and ``cv2.imshow``.

Ours: ``FramePipeline`` with ``YoloDetectorFactory(backend='emulated')``, default settings;
``on_frame`` draws the same kind of panel (``draw_overlay``) into the released frame.

Each design runs ``--warmup`` frames, then ``--frames`` frames; frames/s is measured at the
output, from the last warm-up frame's release to the last frame's release. Prints JSON::

    python benchmarks/reference_design_capacity.py [--frames 400] [--workers 1 2 3]
"""

import argparse
from collections import deque
import json
import logging
import multiprocessing as mp
from multiprocessing import resource_tracker, shared_memory
import os
import pathlib
import platform
import queue
import sys
import time

import cv2
import numpy as np
import psutil

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# benchmarks/postprocess.py: the reference design's post-processing, one definition for both
from postprocess import reference_design_post_process  # noqa: E402, I100
from rk_yolo_ros.core.frame_processing import FrameStatus  # noqa: E402
from rk_yolo_ros.core.pipeline import FramePipeline, PipelineConfig  # noqa: E402
from rk_yolo_ros.yolo.backends.emulated import EmulatedBackend  # noqa: E402
from rk_yolo_ros.yolo.detector import YoloDetectorFactory  # noqa: E402
from rk_yolo_ros.yolo.drawing import draw_overlay  # noqa: E402

SOURCE_SIZE = (1920, 1080)
RENDER_SIZE = (1280, 720)
MODEL_SIZE = (640, 640)
CONF, IOU = 0.25, 0.45
LAYOUT = 'rknn_split'
DISTINCT_INPUTS = 4


def make_inputs():
    """Return the same few 1080p frames for every design (random pixels, fixed seed)."""
    width, height = SOURCE_SIZE
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            for _ in range(DISTINCT_INPUTS)]


# ------------------------------------------------------------------ the reference design
def reference_reader(count, in_queue, workers, measured):
    """Read frames (the reader process): resize to 720p, a new segment per frame, queue it."""
    inputs = make_inputs()
    for frame_id in range(count):
        image = cv2.resize(inputs[frame_id % len(inputs)], RENDER_SIZE)
        segment = shared_memory.SharedMemory(create=True, size=image.nbytes)
        np.ndarray(image.shape, image.dtype, buffer=segment.buf)[:] = image
        in_queue.put((frame_id, segment.name, image.shape, image.dtype.str))  # blocks: no skip
        segment.close()
    for _ in range(workers):
        in_queue.put(None)
    measured.wait(60)  # stay until the CPU of the run is read (not in the guide; costs nothing)


def reference_worker(latency_s, in_queue, out_queue, measured):
    """Detect (a worker process): attach, stretch to 640x640, RGB, NPU, post-process, send."""
    backend = EmulatedBackend(latency_s, input_size=MODEL_SIZE, layout=LAYOUT)
    backend.load()
    while True:
        item = in_queue.get()
        if item is None:
            measured.wait(60)
            break
        frame_id, name, shape, dtype = item
        segment = shared_memory.SharedMemory(name=name)
        image = np.ndarray(shape, dtype, buffer=segment.buf)
        model_input = cv2.cvtColor(cv2.resize(image, MODEL_SIZE), cv2.COLOR_BGR2RGB)
        outputs = backend.infer(model_input[np.newaxis])
        boxes, classes, scores = reference_design_post_process(outputs, CONF, IOU, MODEL_SIZE)
        del image
        segment.close()
        out_queue.put((frame_id, name, shape, dtype, boxes, classes, scores))


def reference_render(image, boxes, classes, scores, frame_id, fps, workers):
    """Draw (the main process): the 640x640 boxes scaled to 720p, and the status panel."""
    scale_x, scale_y = RENDER_SIZE[0] / MODEL_SIZE[0], RENDER_SIZE[1] / MODEL_SIZE[1]
    for box, class_id, score in zip(boxes, classes, scores):
        x1, y1 = int(box[0] * scale_x), int(box[1] * scale_y)
        x2, y2 = int(box[2] * scale_x), int(box[3] * scale_y)
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 255, 0), 2)
        cv2.putText(image, f'class {int(class_id)} {score:.2f}', (x1, max(10, y1 - 5)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 2)
    cv2.rectangle(image, (10, 10), (550, 130), (0, 0, 0), -1)
    for row, text in enumerate((f'FPS: {fps:.1f}', f'Frame ID: {frame_id} | NO SKIP: True',
                                f'Active NPU Models: {workers}')):
        cv2.putText(image, text, (20, 45 + 35 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                    (0, 255, 0), 2)


def measure_reference(workers, latency_s, warmup, frames, meter):
    """Run the reference design once; return its release times (one per frame, in order)."""
    context = mp.get_context('fork')  # as the guide sets it
    resource_tracker.ensure_running()  # one tracker for all: segments made in the reader
    total = warmup + frames
    in_queue = context.Queue(maxsize=max(10, workers * 5))
    out_queue = context.Queue()
    measured = context.Event()
    processes = [context.Process(target=reference_worker,
                                 args=(latency_s, in_queue, out_queue, measured), daemon=True)
                 for _ in range(workers)]
    processes.append(context.Process(target=reference_reader,
                                     args=(total, in_queue, workers, measured), daemon=True))
    for process in processes:
        process.start()
    meter.roles[processes[-1].pid] = 'reader'
    released, pending, intervals = [], {}, deque(maxlen=30)
    expected, last = 0, time.monotonic()
    try:
        while expected < total:
            try:
                item = out_queue.get(timeout=0.05)
                pending[item[0]] = item[1:]
            except queue.Empty:
                if not all(p.is_alive() for p in processes[:workers]):
                    raise RuntimeError('a reference worker died')
            while expected in pending:
                now = time.monotonic()
                intervals.append(now - last)
                last = now
                name, shape, dtype, boxes, classes, scores = pending.pop(expected)
                segment = shared_memory.SharedMemory(name=name)
                try:
                    image = np.ndarray(shape, dtype, buffer=segment.buf).copy()
                    fps = len(intervals) / sum(intervals) if sum(intervals) > 0 else 0.0
                    reference_render(image, boxes, classes, scores, expected, fps, workers)
                finally:
                    segment.close()
                    segment.unlink()
                released.append(time.monotonic())
                meter.at_release(expected)
                expected += 1
    finally:
        measured.set()
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
    return released, {process.pid for process in processes[:workers]}


# ---------------------------------------------------------------------------------- ours
def measure_ours(workers, latency_s, warmup, frames, meter):
    """Run our pipeline once; return its release times (one per frame, in order)."""
    released, statuses = [], []

    def on_frame(frame):
        statuses.append(frame.status)
        if frame.status is FrameStatus.OK:
            draw_overlay(frame.image, [
                f'{pipeline.frame_rate():.1f} fps  frame {frame.frame_id}  '
                f'{len(frame.result)} detections',
                f'worker {frame.worker} of {workers}  {frame.latency_s * 1000.0:.0f} ms'])
        released.append(time.monotonic())
        meter.at_release(frame.frame_id)

    factory = YoloDetectorFactory(backend='emulated', emulated_latency_s=latency_s,
                                  emulated_layout=LAYOUT, input_size=MODEL_SIZE)
    inputs = make_inputs()
    pipeline = FramePipeline(PipelineConfig(workers=workers, cpu_affinity=None), factory,
                             on_frame)
    with pipeline:
        worker_pids = {worker.pid for worker in pipeline.stats().workers}
        for frame_id in range(warmup + frames):
            pipeline.submit(inputs[frame_id % len(inputs)])
        pipeline.flush()
    if statuses.count(FrameStatus.OK) != warmup + frames:
        raise RuntimeError(f'our pipeline lost frames: {statuses}')
    return released, worker_pids


def rate(released, warmup):
    """Frames per second at the output after the warm-up."""
    frames = len(released) - warmup
    return frames / (released[-1] - released[warmup - 1])


class CpuMeter:
    """CPU seconds of this process and each of its children between two released frames."""

    def __init__(self, first, last):
        """Read the CPU when frame ``first`` and when frame ``last`` is released."""
        self.first, self.last = first, last
        self.marks = {}  # frame id -> {pid: cpu seconds}
        self.roles = {os.getpid(): 'main'}  # pid -> role; the rest are 'worker'

    def at_release(self, frame_id):
        """Note a frame's release, in order; read the CPU at the two marks."""
        if frame_id in (self.first, self.last):
            me = psutil.Process()
            cpu = {}
            for process in [me] + me.children(recursive=True):
                try:
                    times = process.cpu_times()
                    cpu[process.pid] = times.user + times.system
                except psutil.Error:
                    pass
            self.marks[frame_id] = cpu

    def per_frame_ms(self, frames, worker_pids):
        """Return CPU ms per frame: all processes, and by role (main, reader, workers)."""
        first, last = self.marks[self.first], self.marks[self.last]
        by_role = {}
        for pid, seconds in last.items():
            role = self.roles.get(pid, 'workers' if pid in worker_pids else 'other')
            by_role[role] = by_role.get(role, 0.0) + seconds - first.get(pid, 0.0)
        result = {'all_processes': sum(by_role.values())}
        result.update(by_role)
        return {key: round(value * 1000.0 / frames, 2) for key, value in result.items()}


def main(argv=None):
    """Measure both designs for each worker count; print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--latency-ms', type=float, default=1.0,
                        help='emulated NPU time per frame (1 ms: the CPU work is the limit)')
    parser.add_argument('--frames', type=int, default=400)
    parser.add_argument('--warmup', type=int, default=30)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    latency_s = args.latency_ms / 1000.0
    load_before = os.getloadavg()
    results = []
    for workers in args.workers:
        row = {'workers': workers}
        for name, measure in (('reference_design', measure_reference), ('ours', measure_ours)):
            meter = CpuMeter(args.warmup - 1, args.warmup + args.frames - 1)
            released, worker_pids = measure(workers, latency_s, args.warmup, args.frames, meter)
            row[name] = {'fps': round(rate(released, args.warmup), 1),
                         'cpu_ms_per_frame': meter.per_frame_ms(args.frames, worker_pids)}
        row['ours_over_reference'] = round(row['ours']['fps'] / row['reference_design']['fps'],
                                           2)
        results.append(row)
    print(json.dumps({
        'benchmark': 'reference_design_capacity',
        'backend': 'emulated NPU backend (fixed sleep latency + synthetic split-head outputs; '
                   'not real inference)',
        'machine': {'platform': platform.platform(), 'cpus': psutil.cpu_count(),
                    'python': platform.python_version(), 'numpy': np.__version__,
                    'opencv': cv2.__version__, 'load_average_1_5_15_before': load_before,
                    'load_average_1_5_15_after': os.getloadavg()},
        'inputs': {'source_size': list(SOURCE_SIZE), 'output_size': list(RENDER_SIZE),
                   'emulated_latency_ms': args.latency_ms, 'emulated_output_layout': LAYOUT,
                   'warmup_frames': args.warmup, 'frames': args.frames,
                   'cpu_note': 'CPU ms per frame between the releases of the first and last '
                               'measured frame: all processes of a design, and by role (main, '
                               'reader, workers together; other: e.g. the resource tracker). '
                               'The main process (and the reference reader) are serial stages: '
                               'with enough cores, 1000 / their ms bounds the frames/s'},
        'results': results,
    }, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
