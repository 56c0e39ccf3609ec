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

"""ament_flake8 over the package's Python files (the ament_python template, ROS-optional)."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# colcon's build/install/log and virtual environments live beside the sources here.
NOT_SOURCES = {'build', 'install', 'log', 'output', 'assets_cache'}


def source_paths():
    """Return the repository's source folders and top-level Python files."""
    return sorted(str(p) for p in ROOT.iterdir()
                  if (p.is_dir() or p.suffix == '.py') and p.name not in NOT_SOURCES
                  and not p.name.startswith(('.', '_')))


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    """The code follows the ROS 2 Python style (ament_flake8)."""
    main = pytest.importorskip('ament_flake8.main', reason='ament_flake8 is not installed; '
                               'source ROS 2 to run the linters').main_with_errors
    rc, errors = main(argv=source_paths())
    assert rc == 0, f'Found {len(errors)} code style errors / warnings:\n' + '\n'.join(errors)
