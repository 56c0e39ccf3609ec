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

"""Tests of the parameter -> settings rules the node delegates (ROS-free)."""

import pytest

from rk_yolo_ros.core.frame_processing import DetectionSettings
from rk_yolo_ros.core.node_settings import (check_choice, class_filter, detection_settings,
                                            pipeline_config, resolve_model)

DETECTION = {'conf_threshold': 0.25, 'iou_threshold': 0.45, 'max_detections': 100,
             'classes': [], 'publish_annotated': True}
PIPELINE = {'workers': 3, 'core_masks': [1, 2, 4], 'cpu_affinity': [4, 5, 6, 7], 'slots': 0,
            'output_height': 720, 'start_method': 'spawn'}


def test_detection_settings_from_parameters():
    """Values map onto DetectionSettings; an empty class list means all classes."""
    assert detection_settings(DETECTION) == DetectionSettings(0.25, 0.45, 100, None, True)
    changed = dict(DETECTION, conf_threshold=0.9, classes=[2, 0, 2], publish_annotated=False)
    assert detection_settings(changed) == DetectionSettings(0.9, 0.45, 100, (0, 2), False)
    assert detection_settings(dict(DETECTION, conf_threshold=1)).conf_threshold == 1.0


@pytest.mark.parametrize('change,message', [
    ({'conf_threshold': 1.5}, r'conf_threshold must be in \[0, 1\], got 1.5'),
    ({'iou_threshold': -0.1}, r'iou_threshold must be in \[0, 1\], got -0.1'),
    ({'conf_threshold': 'high'}, "conf_threshold must be a number in \\[0, 1\\], got 'high'"),
    ({'max_detections': 0}, 'max_detections must be >= 1, got 0'),
    ({'max_detections': 2.5}, 'max_detections must be an integer >= 1, got 2.5'),
    ({'classes': [-1, 3]}, r'classes must be class ids >= 0 .*got \[-1, 3\]'),
    ({'classes': [1.0]}, r'classes must be a list of integers, got \[1.0\]'),
    ({'classes': 'person'}, "classes must be a list of integers, got 'person'"),
])
def test_bad_detection_values_are_rejected_by_name(change, message):
    """Each invalid value raises a ValueError that names it (the node returns it as reason)."""
    with pytest.raises(ValueError, match=message):
        detection_settings(dict(DETECTION, **change))


def test_class_filter_unset_or_empty_keeps_all():
    """An unset (None) or empty classes parameter keeps every class."""
    assert class_filter(None) is None and class_filter([]) is None
    assert class_filter((5,)) == (5,)


def test_pipeline_config_from_parameters():
    """Workers, masks, pinning and slots reach the PipelineConfig; empty pinning is None."""
    config = pipeline_config(PIPELINE)
    assert (config.workers, tuple(config.core_masks), tuple(config.cpu_affinity)) == \
        (3, (1, 2, 4), (4, 5, 6, 7))
    assert config.slots is None  # the pipeline's default count
    config = pipeline_config(dict(PIPELINE, workers=1, cpu_affinity=None, slots=2))
    assert config.cpu_affinity is None and config.slot_count() == 2


@pytest.mark.parametrize('change,message', [
    ({'workers': 0}, 'workers must be an integer >= 1, got 0'),
    ({'workers': 4}, r'core_masks \[1, 2, 4\] must list one NPU core mask per worker '
                     r'\(4 workers\)'),
    ({'cpu_affinity': [-2]}, r'cpu_affinity must list CPU numbers >= 0 .*\[-2\]'),
    ({'slots': -1}, 'slots must be an integer >= 0'),
    ({'start_method': 'thread'}, "start_method must be one of 'spawn', 'forkserver', "
                                 "'fork', got 'thread'"),
])
def test_bad_pipeline_values_are_rejected_by_name(change, message):
    """Invalid start-up values raise a ValueError naming the value."""
    with pytest.raises(ValueError, match=message):
        pipeline_config(dict(PIPELINE, **change))


def test_model_resolution():
    """A given model wins; emulated needs none; else the cached demo model or a clear error."""
    assert resolve_model('/m.onnx', 'auto', '/cache/demo.onnx') == '/m.onnx'
    assert resolve_model('', 'emulated', None) is None
    assert resolve_model('', 'onnx', '/cache/demo.onnx') == '/cache/demo.onnx'
    with pytest.raises(ValueError, match="no model given.*backend 'rknn'.*demo_assets"):
        resolve_model('', 'rknn', None)


def test_check_choice():
    """A value outside the choices is named with the choices."""
    assert check_choice('qos_history', 'keep_all', ('keep_last', 'keep_all')) == 'keep_all'
    with pytest.raises(ValueError, match="qos_history must be one of 'keep_last', 'keep_all', "
                                         "got 'all'"):
        check_choice('qos_history', 'all', ('keep_last', 'keep_all'))
