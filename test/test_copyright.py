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

"""ament_copyright over the package's sources (the ament_python template, ROS-optional)."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOT_SOURCES = {'build', 'install', 'log', 'output', 'assets_cache'}


def source_folders():
    """Return the repository's source folders (ament skips setup.py beside package.xml)."""
    return sorted(str(p) for p in ROOT.iterdir()
                  if p.is_dir() and p.name not in NOT_SOURCES
                  and not p.name.startswith(('.', '_')))


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright():
    """Every source file carries the Apache-2.0 copyright header (ament_copyright)."""
    main = pytest.importorskip('ament_copyright.main', reason='ament_copyright is not '
                               'installed; source ROS 2 to run the linters').main
    rc = main(argv=source_folders())
    assert rc == 0, 'Found errors'
