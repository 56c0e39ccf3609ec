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

"""Tests of the plain-words reading of rknn-toolkit2's build log."""

from rk_yolo_ros.model_tools.toolkit_log import parse_toolkit_log

# The shape of a real rknn-toolkit2 2.5 INT8 build log (colour codes, a progress bar redrawn
# with carriage returns, the outlier table, dtype notes, repeated non-fatal compiler errors).
BUILD_LOG = (
    '\x1b[1;33mW\x1b[0m \x1b[1;33mbuild: found outlier value, this may affect quantization '
    'accuracy\x1b[0m\n'
    '                        const name               abs_mean    abs_std     outlier value\n'
    '                        model.0.conv.weight      4.03        4.41        26.039      \n'
    '                        model.2.cv1.conv.weight  0.51        0.62        9.5         \n'
    'I Quantize calibration include 8 samples.\n'
    'I Quantizating :   0%|    | 0/181\rI Quantizating : 100%|####| 181/181\n'
    "W build: The default input dtype of 'images' is changed from 'float32' to 'int8' in rknn "
    'model for performance!\n'
    '                       Please take care of this change when deploy rknn model with '
    'Runtime API!\n'
    "W build: The default output dtype of 'box_s8' is changed from 'float32' to 'int8' in "
    'rknn model for performance!\n'
    "W build: The default output dtype of 'cls_s8' is changed from 'float32' to 'int8' in "
    'rknn model for performance!\n'
    'W Set temperate env rknn_compute_order=WidthFirst\n'
    + 'E RKNN: [13:51:35.643] REGTASK: The bit width of field value exceeds the limit, '
      'target: v2, offset: 0x405c, shift = 0, limit: 0x1fff, value: 0x20cf\n' * 3
    + 'W load_onnx: The ONNX opset 20 is newer than what this toolkit was tested with\n'
    'W load_onnx: The ONNX opset 20 is newer than what this toolkit was tested with\n'
    'E build: Catch exception when building RKNN model!\n'
    'I rknn building done.\n')


def by_level(findings, level):
    """Return the messages of one level."""
    return [f.message for f in findings if f.level == level]


def test_known_messages_are_explained():
    findings = parse_toolkit_log(BUILD_LOG)
    warnings = by_level(findings, 'warning')
    outliers = [w for w in warnings if 'outlier' in w]
    assert len(outliers) == 1
    assert 'model.0.conv.weight (outlier 26.039, mean |w| 4.03)' in outliers[0]
    assert 'model.2.cv1.conv.weight' in outliers[0]
    notes = by_level(findings, 'note')
    assert any("input 'images' is int8" in n and 'uint8' in n for n in notes)
    assert any(n.startswith('2 outputs (box_s8, cls_s8)') for n in notes)
    registers = [w for w in warnings if 'register field limit' in w]
    assert len(registers) == 1 and 'limit 3 times' in registers[0]
    assert any('calibrated on only 8 images' in w for w in warnings)


def test_unknown_messages_pass_through_once_with_a_count():
    findings = parse_toolkit_log(BUILD_LOG)
    opset = [f for f in findings if 'opset 20' in f.message]
    assert len(opset) == 1 and opset[0].count == 2 and opset[0].level == 'warning'
    assert str(opset[0]).endswith('(x2)')
    errors = by_level(findings, 'error')
    assert errors == ['toolkit says: build: Catch exception when building RKNN model!']
    text = ' '.join(f.message for f in findings)
    assert 'temperate env' not in text and 'Please take care' not in text
    assert '\x1b' not in text and 'Quantizating' not in text


def test_enough_calibration_images_is_a_note_and_a_clean_log_says_nothing():
    findings = parse_toolkit_log('I Quantize calibration include 50 samples.\nI done\n')
    assert [(f.level, f.message) for f in findings] == [
        ('note', 'INT8 calibrated on 50 images.')]
    assert parse_toolkit_log('I rknn building done.\n') == []
