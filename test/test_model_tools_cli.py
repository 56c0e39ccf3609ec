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

"""Tests of the rk-yolo export/convert/verify command line and its errors (no toolkit needed)."""

import argparse
import os
import pathlib
import subprocess
import sys

import pytest

from rk_yolo_ros.model_tools import toolkit_env
from rk_yolo_ros.model_tools.cli import add_model_commands, main
from rk_yolo_ros.model_tools.errors import ModelToolError, ToolkitEnvMissing
from rk_yolo_ros.model_tools.targets import check_target, SUPPORTED_TARGETS

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv):
    """Run the model commands in-process; return (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_commands_register_on_another_parser():
    parser = argparse.ArgumentParser(prog='rk-yolo')
    add_model_commands(parser.add_subparsers(dest='command'))
    args = parser.parse_args(['convert', 'm.onnx', '--fp16', '--target', 'rk3576'])
    assert args.fp16 and args.target == 'rk3576' and callable(args.func)
    args = parser.parse_args(['export', 'm.pt', '--imgsz', '320'])
    assert args.imgsz == 320 and args.func.__name__ == 'run_export'
    args = parser.parse_args(['verify', 'm.rknn', '--cores', '1,4'])
    assert args.cores == '1,4' and args.func.__name__ == 'run_verify'


def test_module_runs_on_its_own():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, '-m', 'rk_yolo_ros.model_tools', '--help'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, env=env, cwd=str(REPO))
    assert result.returncode == 0
    assert 'export' in result.stdout and 'convert' in result.stdout
    assert 'verify' in result.stdout


def test_targets():
    assert check_target('RK3588') == 'rk3588'
    assert check_target('rk-3566') == 'rk3566'
    assert set(SUPPORTED_TARGETS) == {'rk3588', 'rk3576', 'rk3568', 'rk3566', 'rk3562'}
    with pytest.raises(ModelToolError, match=r"unsupported target 'rk1808'.*rk3588, rk3576"):
        check_target('rk1808')


def test_unsupported_target_is_a_clear_error(capsys, split_head_model):
    code, _, err = run_cli(capsys, 'convert', str(split_head_model), '--fp16',
                           '--target', 'jetson')
    assert code == 2
    assert "unsupported target 'jetson'" in err and 'rk3588, rk3576, rk3568' in err
    assert 'Traceback' not in err


def test_int8_without_calibration_or_with_a_missing_one_is_refused(capsys, split_head_model,
                                                                   tmp_path):
    code, _, err = run_cli(capsys, 'convert', str(split_head_model))
    assert code == 2 and 'INT8 conversion needs calibration images' in err and '--fp16' in err
    code, _, err = run_cli(capsys, 'convert', str(split_head_model),
                           '--calibration', str(tmp_path / 'no_such_frames'))
    assert code == 2 and 'no_such_frames does not exist' in err
    (tmp_path / 'empty').mkdir()
    code, _, err = run_cli(capsys, 'convert', str(split_head_model), '--fp16',
                           '--verify-images', str(tmp_path / 'empty'))
    assert code == 2 and 'verification images' in err and 'holds no image files' in err


def test_non_yolo_onnx_is_refused_by_convert(capsys, tmp_path):
    from test_model_tools_export import write_classifier_onnx

    path = write_classifier_onnx(tmp_path / 'classifier.onnx')
    code, _, err = run_cli(capsys, 'convert', str(path), '--fp16')
    assert code == 2 and 'does not look like a YOLO detector' in err


def test_missing_toolkit_env_names_the_setup_command(capsys, split_head_model, tmp_path,
                                                     monkeypatch):
    monkeypatch.setenv(toolkit_env.ENV_VARIABLE, str(tmp_path / 'nowhere'))
    with pytest.raises(ToolkitEnvMissing, match='setup_rknn_toolkit.sh'):
        toolkit_env.toolkit_python()
    usable, reason = toolkit_env.toolkit_status()
    assert not usable and 'nowhere' in reason
    code, _, err = run_cli(capsys, 'convert', str(split_head_model), '--fp16')
    assert code == 2
    assert 'rknn-toolkit2 environment is not set up' in err
    assert str(REPO / 'scripts' / 'setup_rknn_toolkit.sh') in err


def test_toolkit_env_default_location(monkeypatch):
    monkeypatch.delenv(toolkit_env.ENV_VARIABLE, raising=False)
    assert toolkit_env.env_dir() == pathlib.Path(
        '~/.cache/rk_yolo_ros/rknn-toolkit2-venv').expanduser()


def test_verify_off_board_points_to_convert(capsys, tmp_path):
    rknn = tmp_path / 'model.rknn'
    code, _, err = run_cli(capsys, 'verify', str(rknn))
    assert code == 2 and 'RKNN model not found' in err
    rknn.write_bytes(b'RKNN')
    code, _, err = run_cli(capsys, 'verify', str(rknn))
    assert code == 2 and 'no saved reference beside' in err and '--verify-images' in err


def test_setup_script_is_valid_bash_and_documents_itself():
    script = REPO / 'scripts' / 'setup_rknn_toolkit.sh'
    assert os.access(script, os.X_OK)
    assert subprocess.run(['bash', '-n', str(script)]).returncode == 0
    result = subprocess.run(['bash', str(script), '--help'], stdout=subprocess.PIPE,
                            universal_newlines=True)
    assert result.returncode == 0 and 'RK_YOLO_RKNN_ENV' in result.stdout
    bad = subprocess.run(['bash', str(script), '--bogus'], stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert bad.returncode == 2 and "unknown option '--bogus'" in bad.stderr


def test_labels_file_beside_an_onnx_without_names_is_carried(tmp_path):
    from rk_yolo_ros.model_tools.convert import _names_beside

    model = tmp_path / 'm.onnx'
    assert _names_beside(model) is None
    (tmp_path / 'm.labels.yaml').write_text('names:\n  0: cat\n  1: dog\n')
    assert _names_beside(model) == ['cat', 'dog']
    (tmp_path / 'm.labels.yaml').write_text('names: [unclosed\n')
    with pytest.raises(ModelToolError, match='m.labels.yaml'):
        _names_beside(model)
