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
What the ROS tests need: which tests they are, ROS features some trees lack, ROS domain ids.

**The ROS tests** (marker ``ros``: ``pytest -m ros`` selects them; CI's Jazzy leg runs only
them) are found at collection, by conftest.py, from what their module needs. A test module (with
the test/ helper modules it imports) needs ROS 2 when it imports

- a ROS 2 Python package, i.e. one found under the sourced tree (``AMENT_PREFIX_PATH``): by
  ``import``/``from`` anywhere in the module, function bodies included, or by name through
  ``pytest.importorskip``, ``importlib.import_module`` or ``importlib.util.find_spec``;
- or the package's ROS layer, ``rk_yolo_ros.ros``.

Tests marked ``requires_ros_feature(...)`` are ROS tests too, and a test that only starts ROS
programs (say ``ros2`` in a subprocess) says ``pytest.mark.ros`` itself. So a new test written the
usual way (a lazy ``import rclpy`` and a skip without it) is included without doing anything, and
so is one using this module (it imports ament_index_python). Without ROS sourced, imports of ROS
packages mark nothing; the ROS tests skip there anyway.

**ROS features** that not every tree has (the prebuilt Jazzy in ../shared/ros2-jazzy has none of
them): a test that needs one is decorated ``@requires_ros_feature('rosbag2')`` (or a module sets
``pytestmark = requires_ros_feature(...)``; a launch test decorates its
``generate_test_description``, whose marks launch_testing copies). Where the tree lacks the
feature the test skips with the reason; it runs on the trees that have it (CI's Humble leg).

**ROS domain ids**: each tree's tests use their own block, so a Humble and a Jazzy run on one
machine never see each other, and within it each test process and test its own id.
"""

import ast
import functools
import importlib.util
import os
import pathlib

import pytest

PACKAGE = 'rk_yolo_ros'
ROS_LAYER = f'{PACKAGE}.ros'
TEST_DIR = pathlib.Path(__file__).resolve().parent
ROS_NOT_SOURCED = ('ROS 2 is not sourced; source /opt/ros/<distro>/setup.bash or run '
                   'scripts/run_tests.sh')
PACKAGE_NOT_INSTALLED = (f'{PACKAGE} is not installed in an ament prefix: run '
                         'scripts/run_tests.sh, or colcon build --symlink-install and source '
                         'install/setup.bash')
# Calls whose first argument names a module the test module needs.
IMPORTING_CALLS = frozenset({'importorskip', 'import_module', 'find_spec'})

# Parts of ROS 2 a tree may lack, by the ament packages that bring them.
ROS_FEATURES = {
    'rosbag2': ('rosbag2_py', 'ros2bag'),  # rosbag2_py and `ros2 bag play/record`
    'diagnostic_updater': ('diagnostic_updater',),
    'rviz2': ('rviz2',),
}

# ROS domain ids: one block per tree (ROS_DISTRO); other trees share the first block.
DOMAIN_BLOCKS = {'humble': 100, 'jazzy': 150}
DOMAIN_BLOCK_SIZE = 50


def requires_ros_feature(*features):
    """Mark a test as needing ROS features (ROS_FEATURES names); it skips where one is missing."""
    unknown = [feature for feature in features if feature not in ROS_FEATURES]
    if not features or unknown:
        raise ValueError(f'requires_ros_feature takes names from {sorted(ROS_FEATURES)}, got '
                         f'{list(features)}')
    return pytest.mark.ros_feature(*features)


@functools.lru_cache(maxsize=None)
def missing_ros_features(features):
    """Return why the sourced ROS 2 tree cannot run a test needing features (a tuple), or None."""
    try:
        from ament_index_python.packages import get_packages_with_prefixes
    except ImportError:
        return ROS_NOT_SOURCED
    installed = get_packages_with_prefixes()
    missing = [feature for feature in features
               if not all(package in installed for package in ROS_FEATURES[feature])]
    if not missing:
        return None
    return (f'needs {", ".join(missing)}, which this ROS 2 tree '
            f'({os.environ.get("ROS_DISTRO", "unknown")}) does not have; it runs on the trees '
            'that do (CI: Humble)')


def installed_package_missing(import_error=None):
    """
    Return why a test of the installed package (launch files, ros2 launch) cannot run, or None.

    ``import_error``: the ImportError a launch test module met importing ROS, if it did.
    """
    if import_error is not None:
        return f'{ROS_NOT_SOURCED} ({import_error})'
    try:
        from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    except ImportError:
        return ROS_NOT_SOURCED
    try:
        get_package_share_directory(PACKAGE)
    except PackageNotFoundError:
        return PACKAGE_NOT_INSTALLED
    return None


def ros_domain_id(salt=0):
    """Return a ROS domain id for this test: in its tree's block, spread by process id and salt."""
    start = DOMAIN_BLOCKS.get(os.environ.get('ROS_DISTRO', ''), min(DOMAIN_BLOCKS.values()))
    return start + (os.getpid() + salt) % DOMAIN_BLOCK_SIZE


def _ros_prefixes():
    """Return the real paths of the sourced ROS 2 tree's prefixes."""
    return tuple(os.path.realpath(prefix) + os.sep
                 for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
                 if prefix)


@functools.lru_cache(maxsize=None)
def _is_ros_package(top_level):
    """Return True if a top-level module lives in the sourced ROS 2 tree."""
    try:
        spec = importlib.util.find_spec(top_level)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    locations = list(spec.submodule_search_locations or []) or [spec.origin or '']
    prefixes = _ros_prefixes()
    return any(os.path.realpath(location).startswith(prefixes) for location in locations)


def _needed_modules(tree):
    """Yield the names of the modules a parsed test module imports or asks for by name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f'{node.module}.{alias.name}' for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else \
                getattr(function, 'id', None)
            if name in IMPORTING_CALLS:
                yield node.args[0].value


@functools.lru_cache(maxsize=None)
def needs_ros(path):
    """Return True if the test module at path (or a test/ helper it imports) needs ROS 2."""
    path = pathlib.Path(path).resolve()
    return path.suffix == '.py' and _needs_ros(path, set())


def _needs_ros(path, seen):
    """Walk the module at path and the test/ helpers it imports (each once)."""
    seen.add(path)
    tree = ast.parse(path.read_text(), str(path))
    for name in _needed_modules(tree):
        top_level = name.partition('.')[0]
        if top_level == PACKAGE:
            if name == ROS_LAYER or name.startswith(ROS_LAYER + '.'):
                return True
            continue
        helper = TEST_DIR / f'{top_level}.py'
        if helper.is_file():
            if helper not in seen and _needs_ros(helper, seen):
                return True
        elif _is_ros_package(top_level):
            return True
    return False
