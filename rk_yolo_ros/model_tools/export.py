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
``rk-yolo export``: make the RKNN-friendly split-head ONNX of a YOLO model, with its labels.

An Ultralytics detection ONNX ends in one (1, 4 + classes, 8400) tensor; on the RK3588 that
concatenation quantizes badly (box coordinates and 0-1 scores share one INT8 scale) and
overflows NPU register fields. The RKNN model zoo therefore cuts the graph before the decode
and outputs, per stride, the 64-channel DFL box logits, the sigmoid class scores and a
1-channel score sum. For an .onnx, ``split_head_export`` does that graph surgery; a .pt is
exported straight to that layout by ``ultralytics_export_job.py``, run with a python that has
Ultralytics and torch. This module adds the file handling and the labels file (RKNN
models carry no class names).
"""

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import Optional

from rk_yolo_ros.model_tools import toolkit_env
from rk_yolo_ros.model_tools.errors import ModelToolError, ToolkitEnvMissing
from rk_yolo_ros.model_tools.model_check import inspect_onnx, OnnxModelInfo

# rknn-toolkit2 2.x reads opsets up to 19; the model zoo exports with 12 and so do we.
PT_EXPORT_OPSET = 12
MAX_TOOLKIT_OPSET = 19
PT_EXPORT_HELP = ('install Ultralytics where rk-yolo can use it, either into the toolkit '
                  'environment (scripts/setup_rknn_toolkit.sh --with-ultralytics) or into this '
                  'one (pip install ultralytics), then run rk-yolo export MODEL.pt again')

EXPORT_JOB = pathlib.Path(__file__).with_name('ultralytics_export_job.py')


def labels_path_for(model_path) -> pathlib.Path:
    """Return the labels file that belongs beside a model (``<stem>.labels.yaml``)."""
    model_path = pathlib.Path(model_path)
    return model_path.with_name(model_path.stem + '.labels.yaml')


def write_labels(names, path) -> pathlib.Path:
    """Write class names as an Ultralytics-style ``names: {id: name}`` YAML file."""
    import yaml

    path = pathlib.Path(path)
    with open(path, 'w', encoding='utf-8') as stream:
        yaml.safe_dump({'names': {index: str(name) for index, name in enumerate(names)}},
                       stream, allow_unicode=True, sort_keys=False)
    return path


def find_ultralytics_python() -> Optional[str]:
    """Return a python that can import ultralytics: this one, else the toolkit's, else None."""
    if importlib.util.find_spec('ultralytics') is not None:
        return sys.executable
    try:
        python = str(toolkit_env.toolkit_python())
    except ToolkitEnvMissing:
        return None
    probe = subprocess.run([python, '-c', 'import ultralytics'], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    return python if probe.returncode == 0 else None


def export_pt_to_onnx(pt_path: pathlib.Path, out_dir: pathlib.Path, imgsz: int) -> pathlib.Path:
    """Export an Ultralytics .pt to the split-head ONNX with whichever python has ultralytics."""
    python = find_ultralytics_python()
    if python is None:
        raise ModelToolError(f'exporting a .pt model needs ultralytics and torch, found in '
                             f'neither this environment nor the toolkit one: {PT_EXPORT_HELP}')
    target = out_dir / (pt_path.stem + '.split.onnx')
    env = dict(os.environ, YOLO_CONFIG_DIR=str(out_dir / 'ultralytics_settings'))
    env.pop('PYTHONPATH', None)
    run = subprocess.run([python, str(EXPORT_JOB), str(pt_path.resolve()), str(target),
                          str(imgsz), str(PT_EXPORT_OPSET)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, cwd=str(out_dir),
                         env=env)
    if run.returncode != 0 or not target.is_file():
        tail = '\n'.join(run.stdout.strip().splitlines()[-10:])
        raise ModelToolError(f'Ultralytics could not export {pt_path} to ONNX '
                             f'(exit {run.returncode}):\n{tail}')
    return target


def export_model(model, output: Optional[str] = None, imgsz: int = 640,
                 log=print) -> OnnxModelInfo:
    """
    Write the split-head ONNX of ``model`` (.pt or .onnx) and its labels file; return its info.

    ``output`` defaults to ``<stem>.split.onnx`` beside the model; the labels go to
    ``<output stem>.labels.yaml``. Raise ModelToolError for a missing file, a non-YOLO model
    or an opset the toolkit cannot read.
    """
    from rk_yolo_ros.model_tools.split_head_export import export_split_heads, SplitHeadExportError

    source = pathlib.Path(model).expanduser()
    if not source.is_file():
        raise ModelToolError(f'model file not found: {source}')
    suffix = source.suffix.lower()
    if suffix not in ('.pt', '.onnx'):
        raise ModelToolError(f'{source}: expected an Ultralytics .pt or .onnx detection model')
    destination = pathlib.Path(output).expanduser() if output else source.with_name(
        source.stem + '.split.onnx')
    if destination.resolve() == source.resolve():
        raise ModelToolError(f'output {destination} would overwrite the input model')
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='rk_yolo_export_') as scratch:
        if suffix == '.pt':
            log(f'exporting {source} to split-head ONNX with Ultralytics (imgsz {imgsz}, '
                f'opset {PT_EXPORT_OPSET})')
            onnx_path = export_pt_to_onnx(source, pathlib.Path(scratch), imgsz)
        else:
            onnx_path = source
        info = inspect_onnx(onnx_path)
        log(f'input model: {info.describe()}')
        if info.opset > MAX_TOOLKIT_OPSET:
            raise ModelToolError(f'{source} uses opset {info.opset}; rknn-toolkit2 reads opsets '
                                 f'up to {MAX_TOOLKIT_OPSET}: re-export with opset='
                                 f'{PT_EXPORT_OPSET}')
        if info.family == 'rknn_split':
            log('the model already has split heads; copying it')
            shutil.copyfile(onnx_path, destination)
        else:
            try:
                export_split_heads(onnx_path, destination)
            except SplitHeadExportError as error:
                raise ModelToolError(str(error)) from error
    exported = inspect_onnx(destination)
    log(f'wrote {exported.describe()}')
    names = exported.names or info.names
    if names:
        labels = write_labels(names, labels_path_for(destination))
        log(f'wrote labels {labels} ({len(names)} classes)')
    else:
        log(f'warning: {source} carries no class names in its metadata; write '
            f'{labels_path_for(destination).name} yourself (names: {{0: ..., 1: ...}})')
    return exported
