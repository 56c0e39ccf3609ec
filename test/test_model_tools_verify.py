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
Tests of the saved verification bundle and the per-core board check.

The board check runs RKNNLite, which exists only on the board; here the same check runs with
the ONNX Runtime backend on the split-head model standing in for each NPU core, against a
reference made from the original single-output model. That exercises everything but RKNNLite:
the bundle, the decode of both head layouts and the per-core comparison.
"""

import json

from module_checks import requires
import numpy as np
import pytest

from rk_yolo_ros.model_tools.agreement import AgreementThresholds
from rk_yolo_ros.model_tools.calibration import read_images
from rk_yolo_ros.model_tools.errors import ModelToolError
from rk_yolo_ros.model_tools.verify import verify_model
from rk_yolo_ros.model_tools.verify_bundle import (bundle_paths, detect, letterbox_images,
                                                   load_bundle, save_bundle)

pytestmark = requires('onnxruntime', 'cv2')

THRESHOLDS = AgreementThresholds()


@pytest.fixture(scope='module')
def bundle_model(demo_model, demo_images, tmp_path_factory):
    """Return an .rknn path (a placeholder file) with a bundle made from the ONNX model."""
    from rk_yolo_ros.yolo.backends.onnx_backend import OnnxBackend
    from rk_yolo_ros.core.frame_processing import DetectionSettings
    from rk_yolo_ros.yolo.decode import YoloDecoder

    folder = tmp_path_factory.mktemp('bundle')
    inputs, records = letterbox_images(read_images(demo_images), (640, 640))
    backend = OnnxBackend(demo_model)
    backend.load()
    decoder = YoloDecoder((640, 640))
    settings = DetectionSettings(conf_threshold=0.25 - THRESHOLDS.score_margin)
    for index, record in enumerate(records):
        outputs = backend.infer(inputs[index:index + 1])
        record['reference'] = detect(decoder, outputs, record, settings).to_json()
    backend.release()
    report = {'target': 'rk3588', 'quantization': 'int8', 'input_size': [640, 640],
              'settings': {'conf_threshold': 0.25, 'iou_threshold': 0.45},
              'images': records, 'verification': {'thresholds': THRESHOLDS.__dict__}}
    rknn = folder / 'model.rknn'
    rknn.write_bytes(b'placeholder: the ONNX backend stands in for RKNNLite')
    save_bundle(rknn, report, inputs)
    return rknn


def onnx_cores(model_path, transform=None):
    """Return a backend factory running an ONNX model for every core mask."""
    from rk_yolo_ros.yolo.backends.onnx_backend import OnnxBackend

    class Transformed(OnnxBackend):
        """The ONNX backend with its input transformed first."""

        def infer(self, image_nhwc):
            """Transform the image, then run the model."""
            return super().infer(transform(image_nhwc) if transform else image_nhwc)

    return lambda core_mask: Transformed(model_path)


def test_bundle_round_trip(bundle_model, demo_images):
    report, inputs = load_bundle(bundle_model)
    assert inputs.shape == (2, 640, 640, 3) and inputs.dtype == np.uint8
    assert [r['name'] for r in report['images']] == [p.name for p in demo_images]
    bus = report['images'][0]
    assert bus['frame_size'] == [810, 1080] and len(bus['sha256']) == 64
    assert len(bus['reference']['boxes']) >= 3  # bus.jpg shows several people
    json_path, _ = bundle_paths(bundle_model)
    broken = json.loads(json_path.read_text())
    broken['format'] = 'something/else'
    json_path.write_text(json.dumps(broken))
    try:
        with pytest.raises(ModelToolError, match="format 'something/else'"):
            load_bundle(bundle_model)
    finally:
        json_path.write_text(json.dumps(report))


def test_every_core_agrees_when_the_model_is_the_same(bundle_model, split_head_model):
    lines = []
    result = verify_model(bundle_model, backend_factory=onnx_cores(split_head_model),
                          log=lines.append)
    assert result['passed']
    assert sorted(result['cores']) == [1, 2, 4]  # rk3588: each of the three NPU cores
    for core in result['cores'].values():
        summary = core['vs_reference']
        assert summary['missed'] == summary['extra'] == summary['class_flips'] == 0
        assert summary['mean_iou'] > 0.99 and summary['max_abs_score_drift'] < 0.01
    saved = json.loads(bundle_model.with_name('model.board_verify.json').read_text())
    assert saved['passed'] and set(saved['cores']) == {'1', '2', '4'}
    assert any('NPU core mask 4 vs ONNX reference: PASS' in line for line in lines)


def test_a_core_that_sees_other_pixels_fails(bundle_model, split_head_model, tmp_path):
    # Mirrored inputs stand in for a core/driver that corrupts the image.
    mirrored = onnx_cores(split_head_model, lambda image: np.ascontiguousarray(image[:, :, ::-1]))
    result = verify_model(bundle_model, core_masks=[2], backend_factory=mirrored,
                          output=tmp_path / 'result.json', log=lambda line: None)
    assert not result['passed'] and list(result['cores']) == [2]
    assert result['cores'][2]['vs_reference']['failures']
    with pytest.raises(ModelToolError, match='core mask 3 is not a single NPU core'):
        verify_model(bundle_model, core_masks=[3], backend_factory=mirrored)


def test_a_core_that_cannot_load_is_reported_and_the_others_still_run(bundle_model,
                                                                      split_head_model):
    from rk_yolo_ros.yolo.backends.onnx_backend import OnnxBackend

    def factory(core_mask):
        # Core 2 gets a model path that does not exist: its load raises BackendError.
        path = split_head_model if core_mask != 2 else split_head_model.with_name('gone.onnx')
        return OnnxBackend(path)

    lines = []
    result = verify_model(bundle_model, backend_factory=factory, log=lines.append)
    assert not result['passed']
    assert result['cores'][1]['vs_reference']['passed']
    assert result['cores'][4]['vs_reference']['passed']
    assert 'gone.onnx' in result['cores'][2]['error']
    assert any(line.startswith('NPU core mask 2: FAIL') for line in lines)
