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
YOLO detection of one frame in a worker: letterbox, infer, decode, map back, draw.

``YoloDetectorFactory`` is the picklable recipe the pipeline sends to each worker; called
there as ``factory(worker_index, core_mask)`` it builds and loads the backend on that worker's
NPU core and returns a ``YoloDetector``.
"""

from dataclasses import dataclass
import pathlib
from typing import Any, List, Mapping, Optional, Sequence, Tuple
import warnings

import numpy as np

from rk_yolo_ros.core import settings
from rk_yolo_ros.core.frame_processing import (Detections, DetectionSettings, FrameTask,
                                               StagedFrameProcessor)
from rk_yolo_ros.yolo import demo_assets
from rk_yolo_ros.yolo.backends.base import Backend, BackendError
from rk_yolo_ros.yolo.backends.factory import check_backend, create_backend
from rk_yolo_ros.yolo.decode import DecodeError, YoloDecoder
from rk_yolo_ros.yolo.drawing import draw_detections
from rk_yolo_ros.yolo.labels import label_for, load_labels
from rk_yolo_ros.yolo.letterbox import Letterbox
from rk_yolo_ros.yolo.model_check import read_onnx_model


class YoloDetector(StagedFrameProcessor):
    """
    Detect objects in frames with a loaded backend; draw them into the 720p output frame.

    Staged (see ``StagedFrameProcessor``): letterbox, inference, and decode + draw run on
    separate worker threads, so one frame's CPU work overlaps the previous frame's inference.
    """

    INPUT_BUFFERS = 3  # one being prepared, one queued, one on the NPU

    def __init__(self, backend: Backend, names: Sequence[str], model_label: str = 'model',
                 decode_layout: Optional[str] = None, check_outputs: bool = True):
        """
        Wrap a loaded backend.

        With ``check_outputs`` one inference on a blank input validates the output layout now,
        so a model with unexpected outputs fails when the worker starts, naming the model.
        """
        self.backend = backend
        self.names = list(names)
        self.model_label = model_label
        self.letterbox = Letterbox(backend.input_size)
        self._input_ring = [self.letterbox] + [Letterbox(backend.input_size)
                                               for _ in range(self.INPUT_BUFFERS - 1)]
        self._next_input = 0
        self.decoder = YoloDecoder(backend.input_size, layout=decode_layout)
        if check_outputs:
            width, height = backend.input_size
            blank = np.full((height, width, 3), 114, np.uint8)
            outputs = backend.infer(self.letterbox(blank)[0])
            self._decode(outputs, DetectionSettings())
            num_classes = self.decoder.num_classes(outputs)
            if num_classes != len(self.names):
                # not fatal (ids without a name are labelled by number) but usually a
                # missing labels file for an .rknn model, so say it where it shows
                warnings.warn(f'{model_label} has {num_classes} classes but {len(self.names)} '
                              'class names were given; pass the labels file of this model')

    def _decode(self, outputs, settings):
        try:
            return self.decoder.decode(outputs, settings)
        except DecodeError as error:
            raise DecodeError(f'{self.model_label}: {error}') from error

    def prepare(self, frame: np.ndarray, task: FrameTask,
                source: Optional[np.ndarray] = None):
        """
        Letterbox the source (else the frame) into the next free model-input buffer.

        From the source's own pixels the model sees what the Ultralytics predictor sees: a
        small frame is not enlarged to the output height first, a large one is resized once.
        """
        letterbox = self._input_ring[self._next_input]
        self._next_input = (self._next_input + 1) % len(self._input_ring)
        return letterbox(source if source is not None else frame)

    def infer(self, prepared):
        """Run the backend on the letterboxed input."""
        tensor, geometry = prepared
        return self.backend.infer(tensor), geometry

    def finish(self, frame: np.ndarray, task: FrameTask, inferred) -> Detections:
        """Decode, draw into the frame if asked, return boxes in source pixels."""
        outputs, geometry = inferred
        settings = task.settings if task.settings is not None else DetectionSettings()
        boxes, scores, class_ids = self._decode(outputs, settings)
        # pixels of what was letterboxed: the source itself, or the output-size frame
        boxes = geometry.to_frame(boxes)
        letterboxed_w, letterboxed_h = geometry.frame_size
        if settings.draw:
            frame_h, frame_w = frame.shape[:2]
            draw_detections(frame, _scaled(boxes, frame_w / letterboxed_w,
                                           frame_h / letterboxed_h),
                            scores, class_ids, self.names)
        source_w, source_h = task.source_size
        return Detections(boxes=_scaled(boxes, source_w / letterboxed_w,
                                        source_h / letterboxed_h),
                          scores=scores.astype(np.float32),
                          class_ids=class_ids.astype(np.int32),
                          labels=[label_for(self.names, c) for c in class_ids.tolist()])

    def close(self) -> None:
        """Release the backend; safe to call twice."""
        self.backend.release()


def _scaled(boxes: np.ndarray, factor_x: float, factor_y: float) -> np.ndarray:
    """Return x1y1x2y2 boxes scaled by (factor_x, factor_y) as float32 (no copy at 1, 1)."""
    if factor_x == 1.0 and factor_y == 1.0:
        return boxes.astype(np.float32, copy=False)
    return (boxes * np.array([factor_x, factor_y] * 2, np.float32)).astype(np.float32)


@dataclass
class YoloDetectorFactory:
    """
    Picklable recipe for a YoloDetector, built inside each worker.

    ``backend`` is 'onnx', 'rknn', 'auto' (from the model's suffix) or 'emulated' (no model
    needed; for throughput benchmarks). ``input_size`` (width, height) is needed only where the
    backend cannot read it from the model (rknn, emulated).
    """

    model_path: Optional[str] = None
    backend: str = 'auto'
    labels_file: Optional[str] = None
    onnx_threads: int = 1
    input_size: Optional[Tuple[int, int]] = None
    decode_layout: Optional[str] = None  # force 'nchw' or 'nhwc' split heads
    emulated_latency_s: float = 0.0167
    emulated_layout: str = 'ultralytics'
    emulated_num_classes: int = 80
    emulated_seed: int = 0
    emulated_recorded_outputs: Optional[Sequence[np.ndarray]] = None
    # benchmarks only: inferences on one core mask run one at a time across processes
    emulated_npu_lock_dir: Optional[str] = None

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> 'YoloDetectorFactory':
        """
        Build the recipe from setting values and check it here, before any worker starts.

        An empty ``model`` means the cached demo model. ``backend`` becomes the concrete one
        ('auto' resolved). Raises ValueError (ModelCheckError, LabelsError among them),
        FileNotFoundError or BackendError naming what is wrong.
        """
        backend = settings.check('backend', values['backend'])
        demo = demo_assets.model_path()
        model = settings.resolve_model(settings.check('model', values['model']), backend,
                                       str(demo) if demo else None)
        labels = settings.check('labels_file', values['labels_file'])
        factory = cls(model_path=model, backend=backend, labels_file=labels or None,
                      onnx_threads=settings.check('onnx_threads', values['onnx_threads']),
                      input_size=settings.parse_size(settings.check('input_size',
                                                                    values['input_size'])),
                      emulated_latency_s=settings.check('emulated_latency_ms',
                                                        values['emulated_latency_ms']) / 1000.0)
        factory.backend = factory.check()
        return factory

    def describe(self) -> str:
        """Name the backend and model in one phrase, for logs and summaries."""
        model = pathlib.Path(self.model_path).name if self.model_path else 'no model'
        return f'{self.backend} on {model}'

    def check(self) -> str:
        """
        Validate backend, model and labels in the main process; return the backend used.

        An ONNX model's input and output shapes get the same check as the model tools'
        (``model_check.read_onnx_model``), so a model the workers could not decode is refused
        here, in one line (ModelCheckError, a ValueError), before any worker starts. RKNN
        models are checked by the first worker that loads one (only RKNNLite reads them).
        """
        concrete = check_backend(self.backend, self.model_path)
        if concrete == 'onnx':
            read_onnx_model(self.model_path, layout=self.decode_layout)
        self.class_names()
        return concrete

    def class_names(self) -> List[str]:
        """Return the class names (labels file, ONNX metadata, or COCO-80) without a backend."""
        return load_labels(self.model_path, self.labels_file)

    def __call__(self, worker_index: int, core_mask: int) -> YoloDetector:
        """Build and load the backend on this worker's core; return the detector."""
        backend = create_backend(
            self.backend, self.model_path, core_mask, threads=self.onnx_threads,
            input_size=self.input_size, latency_s=self.emulated_latency_s,
            layout=self.emulated_layout, num_classes=self.emulated_num_classes,
            seed=self.emulated_seed, recorded_outputs=self.emulated_recorded_outputs,
            npu_lock_dir=self.emulated_npu_lock_dir)
        label = (str(pathlib.Path(self.model_path).name) if self.model_path
                 else f'{self.backend} backend')
        backend.load()
        try:
            return YoloDetector(backend, self.class_names(), model_label=label,
                                decode_layout=self.decode_layout)
        except Exception:
            backend.release()
            raise


__all__ = ['BackendError', 'YoloDetector', 'YoloDetectorFactory']
