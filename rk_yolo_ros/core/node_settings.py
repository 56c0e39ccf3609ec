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
Turn the detector node's parameter values into core settings, rejecting bad values by name.

ROS-free, so the rules are tested without a ROS graph: the node reads its parameters into a
plain dict and calls these functions at start-up and whenever a parameter changes.
"""

from typing import Any, Mapping, Optional, Sequence, Tuple

from rk_yolo_ros.core.frame_processing import DetectionSettings
from rk_yolo_ros.core.pipeline import PipelineConfig

QOS_RELIABILITY = ('reliable', 'best_effort')
QOS_HISTORY = ('keep_last', 'keep_all')
INPUT_TRANSPORTS = ('raw', 'compressed')
START_METHODS = ('spawn', 'forkserver', 'fork')
# Parameters that may change while the node runs; all others are read-only.
DYNAMIC_PARAMETERS = ('conf_threshold', 'iou_threshold', 'max_detections', 'classes',
                      'publish_annotated')


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; else raise ValueError naming both."""
    if value not in choices:
        raise ValueError(f'{name} must be one of {", ".join(repr(c) for c in choices)}, '
                         f'got {value!r}')
    return value


def int_list(name: str, value: Any) -> Tuple[int, ...]:
    """Return an integer array parameter as a tuple (unset or empty: empty tuple)."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not hasattr(value, '__iter__'):
        raise ValueError(f'{name} must be a list of integers, got {value!r}')
    items = list(value)
    if any(isinstance(v, bool) or not isinstance(v, int) for v in items):
        raise ValueError(f'{name} must be a list of integers, got {items!r}')
    return tuple(items)


def class_filter(value: Any) -> Optional[Tuple[int, ...]]:
    """Return the class filter for DetectionSettings: None (all classes) for an empty list."""
    ids = int_list('classes', value)
    if any(i < 0 for i in ids):
        raise ValueError(f'classes must be class ids >= 0 (empty for all classes), got '
                         f'{list(ids)}')
    return tuple(sorted(set(ids))) or None


def detection_settings(values: Mapping[str, Any]) -> DetectionSettings:
    """
    Build DetectionSettings from parameter values; raise ValueError naming a bad value.

    Reads conf_threshold, iou_threshold, max_detections, classes and publish_annotated (the
    workers draw the annotation only when it is published).
    """
    for name in ('conf_threshold', 'iou_threshold'):
        if isinstance(values[name], bool) or not isinstance(values[name], (int, float)):
            raise ValueError(f'{name} must be a number in [0, 1], got {values[name]!r}')
    if isinstance(values['max_detections'], bool) or \
            not isinstance(values['max_detections'], int):
        raise ValueError(f'max_detections must be an integer >= 1, got '
                         f'{values["max_detections"]!r}')
    return DetectionSettings(conf_threshold=float(values['conf_threshold']),
                             iou_threshold=float(values['iou_threshold']),
                             max_detections=int(values['max_detections']),
                             classes=class_filter(values['classes']),
                             draw=bool(values['publish_annotated']))


def pipeline_config(values: Mapping[str, Any]) -> PipelineConfig:
    """Build the PipelineConfig from parameter values; raise ValueError naming a bad value."""
    workers = values['workers']
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f'workers must be an integer >= 1, got {workers!r}')
    core_masks = int_list('core_masks', values['core_masks'])
    if len(core_masks) < workers:
        raise ValueError(f'core_masks {list(core_masks)} must list one NPU core mask per '
                         f'worker ({workers} workers)')
    cpu_affinity = int_list('cpu_affinity', values['cpu_affinity'])
    if any(cpu < 0 for cpu in cpu_affinity):
        raise ValueError(f'cpu_affinity must list CPU numbers >= 0 (empty: no pinning), got '
                         f'{list(cpu_affinity)}')
    slots = values.get('slots', 0)
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 0:
        raise ValueError(f'slots must be an integer >= 0 (0: the pipeline default), got {slots!r}')
    return PipelineConfig(workers=workers, slots=slots or None,
                          output_height=int(values['output_height']),
                          core_masks=core_masks, cpu_affinity=cpu_affinity or None,
                          start_method=check_choice('start_method', values['start_method'],
                                                    START_METHODS))


def resolve_model(model: str, backend: str, cached_demo_model: Optional[str]) -> Optional[str]:
    """
    Return the model path to load: the parameter, else the cached demo model.

    The emulated backend needs no model (None). Raise ValueError explaining the choices when no
    model is given and the demo model has not been fetched.
    """
    if model:
        return model
    if backend == 'emulated':
        return None
    if cached_demo_model:
        return str(cached_demo_model)
    raise ValueError(f"no model given (parameter 'model' is empty) for backend {backend!r} and "
                     'the demo model is not cached: set model:=/path/to/model.onnx|.rknn, run '
                     '`python3 -m rk_yolo_ros.yolo.demo_assets` to fetch the demo model, or use '
                     'backend:=emulated')
