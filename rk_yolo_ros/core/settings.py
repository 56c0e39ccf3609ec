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
Every setting of the detector, defined once, and the one place values are checked.

Each ``Setting`` has a name, a kind, a default, a range or choices, a description, whether it
may change at run time, and whether it only makes sense under ROS. The node declares its
parameters from ``SETTINGS``, ``rk-yolo run`` builds its flags from it, the launch file its
arguments, and ``config/yolo.yaml`` is ``params_yaml()``. ``parse_text`` reads a value from a
command line or a launch argument and ``check`` validates a value from anywhere, so every entry
point refuses a bad value with the same message. ``DetectionSettings.from_settings`` and
``PipelineConfig.from_settings`` turn checked values into what the core runs on.

This module is a leaf of the core (it imports no other part of it but the CPU layout), so
every other module can take its defaults and rules from here.
"""

from dataclasses import dataclass
import enum
import math
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from rk_yolo_ros.core.cpu_affinity import RK3588_BIG_CORES
import yaml

RKNN_CORE_MASKS = (1, 2, 4)  # NPU_CORE_0, _1, _2: one model copy per core, round-robin
JOINT_CORE_MASK = 7  # all three cores on one model: slower than one copy per core for YOLO
NPU_CORES = len(RKNN_CORE_MASKS)
BACKENDS = ('auto', 'onnx', 'rknn', 'emulated')
START_METHODS = ('spawn', 'forkserver', 'fork')
CLASS_ID_FORMATS = ('name', 'index')
INPUT_TRANSPORTS = ('raw', 'compressed')
QOS_RELIABILITY = ('reliable', 'best_effort')
QOS_HISTORY = ('keep_last', 'keep_all')
# A 16:9 frame at the output height sets the slot width; wider frames are scaled to fit it.
OUTPUT_ASPECT = (16, 9)
MIN_OUTPUT_WIDTH = 1280


class Kind(enum.Enum):
    """The value type of a setting."""

    INT = 'integer'
    FLOAT = 'number'
    BOOL = 'boolean'
    STR = 'string'
    INT_LIST = 'list of integers'
    STR_LIST = 'list of strings'


LIST_KINDS = (Kind.INT_LIST, Kind.STR_LIST)


@dataclass(frozen=True)
class Setting:
    """One setting: what it is, its default, what values it takes."""

    name: str
    kind: Kind
    default: Any
    description: str
    choices: Tuple[str, ...] = ()
    minimum: Optional[float] = None  # inclusive, for numbers and list items
    maximum: Optional[float] = None
    dynamic: bool = False  # may change while the node runs
    ros_only: bool = False  # a ROS matter (QoS, topics): no rk-yolo flag
    rule: str = ''  # the expected values in words, where a range or choices do not say it
    item_check: Optional[Callable[[Any], Optional[str]]] = None  # list items: why one is bad

    @property
    def flag(self) -> str:
        """Return the command-line flag, e.g. ``--conf-threshold``."""
        return '--' + self.name.replace('_', '-')

    def expected(self) -> str:
        """Say in words which values are accepted (used in every error message)."""
        if self.rule:
            return self.rule
        if self.choices:
            return 'one of ' + ', '.join(repr(c) for c in self.choices)
        articles = {Kind.INT: 'an integer', Kind.FLOAT: 'a number'}
        article = articles.get(self.kind, f'a {self.kind.value}')
        if self.minimum is not None and self.maximum is not None:
            return f'{article} in [{_number(self.minimum)}, {_number(self.maximum)}]'
        if self.minimum is not None:
            return f'{article} >= {_number(self.minimum)}'
        return article

    def help_text(self) -> str:
        """Return the description with the accepted values and the default, for --help."""
        return f'{self.description} ({self.expected()}; default {format_value(self.default)})'


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def format_value(value: Any) -> str:
    """Show a value the way messages and the YAML file write it."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(format_value(v) for v in value) + ']'
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _core_mask_problem(mask: int) -> Optional[str]:
    if mask == JOINT_CORE_MASK:
        return ('mask 7 runs one model on all three NPU cores, which is slower for YOLO than one '
                'model copy per core')
    if mask not in RKNN_CORE_MASKS:
        return f'mask {mask} is not a single RK3588 NPU core'
    return None


def _non_negative(value: int) -> Optional[str]:
    return f'{value} is negative' if value < 0 else None


def _topic_problem(topic: str) -> Optional[str]:
    if not topic.strip('/'):
        return f'{topic!r} is not a topic name'
    if any(character.isspace() for character in topic):
        return f'{topic!r} has white space in it'
    return None


# The table. Order is the order of --help, the launch arguments and config/yolo.yaml.
SETTINGS: Tuple[Setting, ...] = (
    Setting('model', Kind.STR, '',
            'Model file (.onnx or .rknn); empty: the cached demo model (rk-yolo fetch-demo). '
            'The emulated backend needs none.'),
    Setting('backend', Kind.STR, 'auto',
            "Inference backend; auto picks from the model's suffix; emulated only sleeps "
            '(throughput tests, no real detections).', choices=BACKENDS),
    Setting('workers', Kind.INT, 3, 'Worker processes, one per NPU core (RK3588: 3).',
            minimum=1, maximum=64),
    Setting('core_masks', Kind.INT_LIST, list(RKNN_CORE_MASKS),
            'RKNN NPU core mask of each worker, used round-robin (1, 2, 4 = cores 0, 1, 2).',
            rule='a list of single NPU core masks 1, 2 or 4 (not the joint mask 7)',
            item_check=_core_mask_problem),
    Setting('cpu_affinity', Kind.INT_LIST, list(RK3588_BIG_CORES),
            'CPU each worker is pinned to (RK3588 big cores 4-7); CPUs this machine lacks are '
            'left unpinned; empty: no pinning.',
            rule='a list of CPU numbers >= 0 (empty: no pinning)', item_check=_non_negative),
    Setting('slots', Kind.INT, 0,
            'Shared-memory frame slots; 0: three per worker + 2.', minimum=0, maximum=1024),
    Setting('conf_threshold', Kind.FLOAT, 0.25,
            'Minimum detection confidence.', minimum=0.0, maximum=1.0, dynamic=True),
    Setting('iou_threshold', Kind.FLOAT, 0.45,
            'IoU threshold of the non-maximum suppression.', minimum=0.0, maximum=1.0,
            dynamic=True),
    Setting('max_detections', Kind.INT, 100,
            'Most detections kept per frame.', minimum=1, maximum=10000, dynamic=True),
    Setting('classes', Kind.INT_LIST, [],
            'Class ids to keep, e.g. [0, 2]; empty: all classes.',
            rule='a list of class ids >= 0 (empty: all classes)', item_check=_non_negative,
            dynamic=True),
    Setting('labels_file', Kind.STR, '',
            'Class names: YAML with names: or one name per line; empty: the ONNX metadata or '
            'COCO-80.'),
    Setting('class_id_format', Kind.STR, 'name',
            'What Detection2D hypothesis class_id holds: the class name or its index as text.',
            choices=CLASS_ID_FORMATS),
    Setting('output_height', Kind.INT, 720,
            'Rows of the frames the workers annotate (and of image_annotated); the width follows '
            'the aspect ratio, up to a 16:9 frame.', minimum=16, maximum=4320),
    Setting('input_size', Kind.STR, '',
            'Model input WIDTHxHEIGHT where the backend cannot read it from the model (rknn, '
            'emulated); empty: from the model, else 640x640.',
            rule="WIDTHxHEIGHT like 640x640, or '' (from the model)"),
    Setting('onnx_threads', Kind.INT, 1, 'ONNX Runtime threads per worker.', minimum=1,
            maximum=64),
    Setting('emulated_latency_ms', Kind.FLOAT, 16.7,
            'Inference time the emulated backend sleeps (yolo11n on one RK3588 core: 16.7).',
            minimum=0.0, maximum=60000.0),
    Setting('start_method', Kind.STR, 'spawn', 'How worker processes start.',
            choices=START_METHODS),
    Setting('tracking', Kind.BOOL, False,
            'Track objects across frames (ByteTrack-style, in frame order): Detection2D.id '
            'carries the track id; turning it on starts new tracks. Needs scipy.',
            dynamic=True),
    Setting('publish_annotated', Kind.BOOL, True,
            'Publish image_annotated (the workers draw only when it is on).', dynamic=True,
            ros_only=True),
    Setting('input_transport', Kind.STR, 'raw',
            'raw subscribes to image (sensor_msgs/Image), compressed to image/compressed '
            '(sensor_msgs/CompressedImage, jpeg or png); for the one topic image only.',
            choices=INPUT_TRANSPORTS, ros_only=True),
    Setting('image_topics', Kind.STR_LIST, [],
            'Image topics of several cameras served by one node and one pool of workers, '
            'e.g. [/left/image_raw, /right/image_raw/compressed] (a topic ending in '
            '/compressed is a CompressedImage topic); each camera publishes <camera>/detections '
            'and <camera>/image_annotated beside its topic, the camera named after it '
            '(/left/image_raw: left, so /left/detections); empty: the one topic image.',
            rule='a list of image topics, each naming its own camera (empty: the one topic '
                 'image)', item_check=_topic_problem, ros_only=True),
    Setting('qos_reliability', Kind.STR, 'reliable',
            'Reliability of the image subscription; best_effort matches Best-Effort cameras.',
            choices=QOS_RELIABILITY, ros_only=True),
    Setting('qos_history', Kind.STR, 'keep_last',
            'History of the image subscription; keep_all with a Reliable publisher loses no '
            'frame between publisher and node.', choices=QOS_HISTORY, ros_only=True),
    Setting('qos_depth', Kind.INT, 10, 'Queue depth of the image subscription for keep_last.',
            minimum=1, maximum=10000, ros_only=True),
    Setting('output_qos_depth', Kind.INT, 30,
            'Queue depth (Reliable, keep_last) of detections and image_annotated: a subscriber '
            'that falls this many frames behind (a slow rviz2 or recorder) starts to miss '
            'them; 30 is one second at camera rate.', minimum=1, maximum=10000, ros_only=True),
    Setting('autostart', Kind.BOOL, True,
            'Configure and activate the node (a lifecycle node) as soon as it starts; false '
            'leaves it unconfigured for a lifecycle manager (ros2 lifecycle set ...).',
            ros_only=True),
)
BY_NAME: Dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
DYNAMIC = tuple(setting.name for setting in SETTINGS if setting.dynamic)


def setting(name: str) -> Setting:
    """Return the named setting; KeyError lists the known names."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f'no setting {name!r}; known: {", ".join(BY_NAME)}') from None


def default(name: str) -> Any:
    """Return the default of the named setting (lists as a fresh list)."""
    return _copy(setting(name).default)


def defaults(ros: bool = True) -> Dict[str, Any]:
    """Return every setting's default (without the ROS-only ones unless ``ros``)."""
    return {s.name: _copy(s.default) for s in SETTINGS if ros or not s.ros_only}


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


# ----------------------------------------------------------------------------------- checking
def _bad(setting_: Setting, value: Any, why: str = '') -> ValueError:
    shown = format_value(list(value) if isinstance(value, tuple) else value)
    return ValueError(f'{setting_.name} must be {setting_.expected()}, got {shown}'
                      + (f' ({why})' if why else ''))


def check(name: str, value: Any) -> Any:
    """
    Return ``value`` in its setting's type, or raise ValueError naming the setting.

    Integers are accepted where a number is expected (YAML writes 1 for 1.0); anything else of
    the wrong type, out of range, or not among the choices is refused. The message is the same
    for every entry point: '<name> must be <expected>, got <value>'.
    """
    item = setting(name)
    kind = item.kind
    if kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise _bad(item, value)
        return value
    if kind is Kind.STR:
        if not isinstance(value, str):
            raise _bad(item, value)
        if item.choices and value not in item.choices:
            raise _bad(item, value)
        if name == 'input_size' and value:
            parse_size(value)  # raises with this setting's message
        return value
    if kind in LIST_KINDS:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise _bad(item, value)
        values = list(value)
        if kind is Kind.INT_LIST and \
                any(isinstance(v, bool) or not isinstance(v, int) for v in values):
            raise _bad(item, values)
        if kind is Kind.STR_LIST and any(not isinstance(v, str) for v in values):
            raise _bad(item, values)
        for entry in values:
            problem = item.item_check(entry) if item.item_check else None
            if problem:
                raise _bad(item, values, problem)
        if name == 'image_topics':
            camera_names(values)  # raises with this setting's message
        return values
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or (kind is Kind.INT and not isinstance(value, int)) or \
            (isinstance(value, float) and not math.isfinite(value)):
        raise _bad(item, value)
    if (item.minimum is not None and value < item.minimum) or \
            (item.maximum is not None and value > item.maximum):
        raise _bad(item, value)
    return float(value) if kind is Kind.FLOAT else int(value)


def check_all(values: Mapping[str, Any]) -> Dict[str, Any]:
    """Check every value of a mapping of setting names; return the checked values."""
    return {name: check(name, value) for name, value in values.items()}


def parse_size(text: str) -> Optional[Tuple[int, int]]:
    """Return (width, height) of an input_size text like '640x640', None for ''."""
    if not text:
        return None
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        width = height = 0
    if width < 1 or height < 1:
        raise _bad(BY_NAME['input_size'], text)
    return width, height


def parse_text(name: str, text: str) -> Any:
    """
    Read a setting from command-line or launch-argument text, then ``check`` it.

    The text is read as YAML, as ``ros2 param set`` and parameter files read it, so '2.5' is a
    number and '[0, 2]' a list wherever it comes from, and a bad value gets the same message
    as from a parameter. Strings are taken as written. Lists may also be comma-separated
    ('0,2', '/left/image_raw,/right/image_raw'); 'none' or '' is the empty list.
    """
    item = setting(name)
    raw = text.strip()
    if item.kind is Kind.STR:
        return check(name, raw)
    if item.kind in LIST_KINDS:
        if raw.lower() in ('', 'none', '[]'):
            return check(name, [])
        if not raw.startswith('['):
            raw = f'[{raw}]'
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = text
    return check(name, value)


# ------------------------------------------------------------------------------ what it builds
COMPRESSED_SUFFIX = 'compressed'  # image_transport's: <topic>/compressed is a CompressedImage


def is_compressed_topic(topic: str) -> bool:
    """Return True for a CompressedImage topic: one whose last part is 'compressed'."""
    return topic.rstrip('/').split('/')[-1] == COMPRESSED_SUFFIX


def camera_name(topic: str) -> str:
    """
    Return the camera an image topic belongs to, which names its outputs (<camera>/detections).

    A trailing '/compressed' goes, then a last part starting with 'image' if a part comes
    before it: '/left/image_raw' and '/left/image_raw/compressed' give 'left',
    '/robot/front/image_rect' gives 'robot/front', '/left_camera' stays 'left_camera'.
    """
    parts = [part for part in topic.split('/') if part]
    if parts and parts[-1] == COMPRESSED_SUFFIX:
        parts.pop()
    if len(parts) > 1 and parts[-1].startswith('image'):
        parts.pop()
    return '/'.join(parts)


def camera_names(topics: Sequence[str]) -> List[str]:
    """Return the camera name of each topic; raise ValueError if two give the same name."""
    found: Dict[str, str] = {}
    for topic in topics:
        name = camera_name(topic)
        why = f'{topic!r} names no camera' if not name else (
            f'{found[name]!r} and {topic!r} both give the camera name {name!r}'
            if name in found else '')
        if why:
            raise _bad(BY_NAME['image_topics'], list(topics), why)
        found[name] = topic
    return list(found)


def max_output_width(output_height: int) -> int:
    """Return the slot width for an output height: a 16:9 frame, and at least 1280."""
    width, height = OUTPUT_ASPECT
    return max(MIN_OUTPUT_WIDTH, output_height * width // height)


def worker_count_warning(workers: int, backend: str, cpu_count: int) -> Optional[str]:
    """Say when more workers are asked for than the hardware runs side by side."""
    if backend == 'rknn' and workers > NPU_CORES:
        return (f'{workers} workers for {NPU_CORES} RK3588 NPU cores: workers share cores '
                '(core masks are given round-robin), which adds memory and no speed')
    if backend != 'rknn' and workers > cpu_count:
        return (f'{workers} workers on {cpu_count} CPUs: they will compete for the CPUs '
                '(each worker is one process with its own model copy)')
    return None


def resolve_model(model: str, backend: str, cached_demo_model: Optional[str]) -> Optional[str]:
    """
    Return the model path to load: the setting, else the cached demo model.

    The emulated backend needs no model (None). Raise ValueError explaining the choices when no
    model is given and the demo model has not been fetched.
    """
    if model:
        return model
    if backend == 'emulated':
        return None
    if cached_demo_model:
        return str(cached_demo_model)
    raise ValueError(f"no model given (setting 'model' is empty) for backend {backend!r} and "
                     'the demo model is not cached: give a .onnx or .rknn model, fetch the demo '
                     'model with `rk-yolo fetch-demo`, or use the emulated backend')


# ----------------------------------------------------------------------------------- the YAML
def params_yaml(node_name: str = 'yolo_node') -> str:
    """Return the node's parameters file: every setting with its default and description."""
    lines = [f'# Parameters of {node_name}, one per setting, with their defaults',
             '# (ros2 launch rk_yolo_ros yolo.launch.py params_file:=<a copy of this file>).',
             '# Generated by `rk-yolo params`; a test keeps config/yolo.yaml equal to it.',
             '# Values given here win over the defaults; launch arguments given on the command',
             '# line win over this file. "/**/" matches the node in any namespace.',
             f'/**/{node_name}:', '  ros__parameters:']
    for item in SETTINGS:
        lines.extend(_yaml_comment(item))
        lines.append(f'    {item.name}: {yaml_value(item.default)}')
    return '\n'.join(lines) + '\n'


def yaml_value(value: Any) -> str:
    """Show a value the way a ROS parameters file writes it."""
    if isinstance(value, str):
        return "''" if value == '' else value
    return format_value(value)


def _yaml_comment(item: Setting) -> List[str]:
    words = (item.description + (' Changeable at run time.' if item.dynamic else '')).split()
    lines, current = [], '    #'
    for word in words:
        if len(current) + 1 + len(word) > 99:
            lines.append(current)
            current = '    #'
        current += ' ' + word
    lines.append(current)
    return lines


def names(ros: bool = True) -> Iterable[str]:
    """Return the names of the settings (without the ROS-only ones unless ``ros``)."""
    return [s.name for s in SETTINGS if ros or not s.ros_only]
