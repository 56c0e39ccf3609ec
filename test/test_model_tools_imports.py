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

"""What the model tooling imports: the toolkit job stays stdlib + numpy, the CLI stays light."""

import ast
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
JOB = REPO / 'rk_yolo_ros' / 'model_tools' / 'rknn_build_job.py'


def imported_modules(path):
    """Return the top-level names of every module a Python file imports."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or '').split('.')[0])
    return names


def test_toolkit_job_imports_only_stdlib_numpy_and_rknn():
    # It runs with the toolkit environment's python, which has no rk_yolo_ros, onnxruntime,
    # OpenCV or rclpy of ours: anything else would break there.
    assert imported_modules(JOB) <= {'json', 'sys', 'time', 'traceback', 'importlib', 'numpy',
                                     'rknn'}


def test_toolkit_job_reports_a_missing_toolkit_as_a_result(tmp_path):
    if importlib.util.find_spec('rknn') is not None:
        pytest.skip('rknn-toolkit2 is importable here; the test needs an interpreter without it')
    spec = tmp_path / 'spec.json'
    result = tmp_path / 'result.json'
    spec.write_text('{"result": "%s", "onnx": "m.onnx", "rknn": "m.rknn", "target": "rk3588",'
                    ' "quantize": false}' % result)
    # This interpreter has no rknn.api: the job must say so in its result, not just crash.
    env = dict(os.environ, PYTHONPATH='')
    run = subprocess.run([sys.executable, str(JOB), str(spec)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, env=env)
    assert run.returncode == 1
    text = result.read_text()
    assert '"ok": false' in text and 'rknn' in text


def test_cli_import_pulls_no_heavy_or_ros_modules():
    code = ('import sys, rk_yolo_ros.model_tools.cli as c, argparse; '
            'c.add_model_commands(argparse.ArgumentParser().add_subparsers()); '
            "heavy = {'rclpy', 'onnxruntime', 'onnx', 'cv2', 'rosbags', 'torch', 'yaml'}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    run = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE,
                         universal_newlines=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                         cwd=str(REPO))
    assert run.returncode == 0 and run.stdout.strip() == '[]'
