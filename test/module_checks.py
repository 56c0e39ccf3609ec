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
Skip markers for tests that need an optional package.

Module-level ``pytest.importorskip`` is not usable here: with launch_testing's pytest plugin
active (whenever ROS is sourced) a module-level skip skips the whole test folder. Tests mark
themselves with ``pytestmark = requires('onnx')`` instead and import lazily or via ``optional``.
"""

import importlib
import importlib.util

import pytest


def optional(name):
    """Return the imported module, or None where it is not installed."""
    if importlib.util.find_spec(name.split('.')[0]) is None:
        return None
    return importlib.import_module(name)


def requires(*names, extra='test'):
    """Return a skipif marker naming the missing packages and the pip extra that brings them."""
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    return pytest.mark.skipif(bool(missing), reason=f'{", ".join(missing)} not installed '
                              f'(pip install -e ".[{extra}]")')
