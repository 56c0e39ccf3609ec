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

"""Tests of the one settings table: its rules, messages, parsing and the files made from it."""

import pathlib

import pytest
from rk_yolo_ros.core import settings
from rk_yolo_ros.core.frame_processing import DetectionSettings
from rk_yolo_ros.core.pipeline import PipelineConfig
from settings_cases import BAD_VALUES
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize('name,value,message', BAD_VALUES)
def test_bad_values_are_refused_with_one_message(name, value, message):
    """check() refuses each bad value with '<name> must be <expected>, got <value>'."""
    with pytest.raises(ValueError) as raised:
        settings.check(name, value)
    assert str(raised.value) == message


def test_good_values_come_back_typed():
    """Integers pass as numbers (YAML writes 1 for 1.0); lists come back as lists."""
    assert settings.check('conf_threshold', 1) == 1.0
    assert isinstance(settings.check('conf_threshold', 1), float)
    assert settings.check('classes', (2, 0)) == [2, 0]
    assert settings.check('core_masks', [4]) == [4]
    assert settings.check('input_size', '') == ''
    assert settings.check('workers', 5) == 5  # round-robin masks: more workers than cores
    with pytest.raises(ValueError):
        settings.check('workers', True)  # a bool is not an integer here


def test_parse_text_reads_what_a_command_line_or_launch_argument_gives():
    """Numbers, comma or YAML lists, empty lists and booleans from text."""
    assert settings.parse_text('conf_threshold', '0.4') == 0.4
    assert settings.parse_text('workers', '2') == 2
    assert settings.parse_text('classes', '0,2') == [0, 2]
    assert settings.parse_text('classes', '[0, 2]') == [0, 2]
    assert settings.parse_text('cpu_affinity', 'none') == []
    assert settings.parse_text('cpu_affinity', '[]') == []
    assert settings.parse_text('publish_annotated', 'false') is False
    assert settings.parse_text('input_size', '320x256') == '320x256'
    assert settings.parse_size('320x256') == (320, 256)
    with pytest.raises(ValueError, match=r"classes must be a list .*got \['people'\]"):
        settings.parse_text('classes', 'people')
    with pytest.raises(ValueError, match=r'max_detections must be .*got 2.5$'):
        settings.parse_text('max_detections', '2.5')  # the number, as a parameter shows it
    with pytest.raises(ValueError, match=r"workers must be an integer in \[1, 64\], got 'two'"):
        settings.parse_text('workers', 'two')
    with pytest.raises(ValueError, match='got 99'):
        settings.parse_text('conf_threshold', '99')


def test_image_topics_name_their_cameras():
    """Each topic names a camera (its outputs); /compressed topics are CompressedImage ones."""
    assert settings.parse_text('image_topics', '/left/image_raw, /right/image_raw/compressed') \
        == ['/left/image_raw', '/right/image_raw/compressed']
    assert settings.parse_text('image_topics', '[/a/image, b/image_raw]') == \
        ['/a/image', 'b/image_raw']
    assert settings.parse_text('image_topics', '') == [] == settings.default('image_topics')
    assert settings.camera_names(['/left/image_raw', '/right/image_raw/compressed',
                                  '/robot/front/image_rect', '/rear_camera', '/image_raw']) == \
        ['left', 'right', 'robot/front', 'rear_camera', 'image_raw']
    assert settings.is_compressed_topic('/right/image_raw/compressed')
    assert not settings.is_compressed_topic('/right/compressed_image')
    with pytest.raises(ValueError, match=r"'/a/image' and '/a/image_raw' both give the camera "
                                         r"name 'a'"):
        settings.check('image_topics', ['/a/image', '/a/image_raw'])
    with pytest.raises(ValueError, match=r"'compressed' names no camera"):
        settings.check('image_topics', ['compressed'])
    with pytest.raises(ValueError, match=r"got \['/a', 3\]$"):
        settings.check('image_topics', ['/a', 3])
    with pytest.raises(ValueError, match=r"'/a b' has white space in it"):
        settings.parse_text('image_topics', '["/a b"]')


def test_core_types_take_their_defaults_from_the_table():
    """The defaults of DetectionSettings and PipelineConfig are the table's."""
    detection = DetectionSettings()
    for name in ('conf_threshold', 'iou_threshold', 'max_detections'):
        assert getattr(detection, name) == settings.default(name)
    config = PipelineConfig()
    assert config.workers == settings.default('workers')
    assert config.output_height == settings.default('output_height')
    assert config.max_output_width == settings.max_output_width(config.output_height) == 1280
    assert tuple(config.core_masks) == tuple(settings.default('core_masks'))
    assert tuple(config.cpu_affinity) == tuple(settings.default('cpu_affinity'))
    assert config.start_method == settings.default('start_method')


def test_builders_turn_values_into_core_settings():
    """from_settings maps values; an empty class list keeps all; the width follows the height."""
    values = settings.defaults()
    assert DetectionSettings.from_settings(values) == DetectionSettings()
    changed = dict(values, conf_threshold=0.9, classes=[2, 0, 2])
    assert DetectionSettings.from_settings(changed, draw=False) == \
        DetectionSettings(0.9, 0.45, 100, (0, 2), False)
    config = PipelineConfig.from_settings(dict(values, workers=4, output_height=1080, slots=0,
                                               cpu_affinity=[]))
    assert (config.workers, config.max_output_width, config.slots) == (4, 1920, None)
    assert config.cpu_affinity is None and config.slot_count() == 14
    with pytest.raises(ValueError, match='conf_threshold must be'):
        DetectionSettings(conf_threshold=1.2)


def test_worker_count_warning_names_the_hardware():
    """More rknn workers than NPU cores, or more CPU workers than CPUs, is said."""
    assert settings.worker_count_warning(3, 'rknn', 8) is None
    assert '4 workers for 3 RK3588 NPU cores' in settings.worker_count_warning(4, 'rknn', 8)
    assert settings.worker_count_warning(4, 'onnx', 8) is None
    assert '99 workers on 8 CPUs' in settings.worker_count_warning(99, 'onnx', 8)


def test_model_resolution():
    """A given model wins; emulated needs none; else the cached demo model or a clear error."""
    assert settings.resolve_model('/m.onnx', 'auto', '/cache/demo.onnx') == '/m.onnx'
    assert settings.resolve_model('', 'emulated', None) is None
    assert settings.resolve_model('', 'onnx', '/cache/demo.onnx') == '/cache/demo.onnx'
    with pytest.raises(ValueError, match="no model given.*backend 'rknn'.*fetch-demo"):
        settings.resolve_model('', 'rknn', None)


def test_config_yaml_is_the_table():
    """config/yolo.yaml is params_yaml(): every setting at its default, nothing else."""
    text = (ROOT / 'config' / 'yolo.yaml').read_text()
    assert text == settings.params_yaml(), 'regenerate it: rk-yolo params > config/yolo.yaml'
    parameters = yaml.safe_load(text)['/**/yolo_node']['ros__parameters']
    assert parameters == settings.defaults()


def test_docs_parameter_table_lists_every_setting_with_its_default():
    """docs/ros.md's parameter table agrees with the table (names, defaults, run time)."""
    rows = {}
    for line in (ROOT / 'docs' / 'ros.md').read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if len(cells) >= 3 and cells[0].startswith('`') and cells[0].endswith('`'):
            rows[cells[0].strip('`')] = cells
    for item in settings.SETTINGS:
        assert item.name in rows, f'docs/ros.md has no row for {item.name}'
        assert rows[item.name][1] == f'`{settings.yaml_value(item.default)}`', item.name
        assert ('yes' in rows[item.name][2]) == item.dynamic, item.name
