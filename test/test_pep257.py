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

"""ament_pep257 over the package's Python files (the ament_python template, ROS-optional)."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOT_SOURCES = {'build', 'install', 'log', 'output', 'assets_cache'}


def source_paths():
    """Return the repository's source folders and top-level Python files."""
    return sorted(str(p) for p in ROOT.iterdir()
                  if (p.is_dir() or p.suffix == '.py') and p.name not in NOT_SOURCES
                  and not p.name.startswith(('.', '_')))


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    """Every module, class and function has a pep257 docstring (ament_pep257)."""
    main = pytest.importorskip('ament_pep257.main', reason='ament_pep257 is not installed; '
                               'source ROS 2 to run the linters').main
    rc = main(argv=source_paths())
    assert rc == 0, 'Found code style errors / warnings'
