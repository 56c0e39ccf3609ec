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
The folders are the layers, and the imports keep to them.

- core imports no other layer; yolo imports only core; messages only core;
- offline (rk-yolo) may use core, yolo and messages; model_tools also offline's sources;
  ros (the node) may use core, yolo and messages;
- only ros/ (and the launch files) import rclpy or any other ROS package;
- the adapters (ros, offline, model_tools) and the benchmarks use the core's public API only:
  pipeline, frame_processing, settings, counters, health and stamp_gaps, never the pool, the
  slots, the worker messages or the reorder buffer inside.
Every import counts, also one inside a function.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'rk_yolo_ros'
LAYERS = ('core', 'yolo', 'messages', 'ros', 'offline', 'model_tools')
ALLOWED = {
    'core': {'core'},
    'yolo': {'core', 'yolo'},
    'messages': {'core', 'messages'},
    'offline': {'core', 'yolo', 'messages', 'offline'},
    'model_tools': {'core', 'yolo', 'messages', 'offline', 'model_tools'},
    'ros': {'core', 'yolo', 'messages', 'ros'},
    '': set(LAYERS),  # the package's entry points (__main__)
}
CORE_PUBLIC = {'pipeline', 'frame_processing', 'settings', 'counters', 'health', 'stamp_gaps'}
ROS_PACKAGES = {'rclpy', 'launch', 'launch_ros', 'launch_testing', 'cv_bridge', 'sensor_msgs',
                'vision_msgs', 'diagnostic_msgs', 'geometry_msgs', 'std_msgs', 'rcl_interfaces',
                'builtin_interfaces', 'diagnostic_updater', 'ament_index_python', 'rosbag2_py',
                'lifecycle_msgs'}


def imported_modules(path):
    """Return every module a file imports (absolute names; relative ones resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = '.'.join(path.relative_to(ROOT).with_suffix('').parts[:-1])
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parent = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(parent + ([base] if base else []))
            modules.append(base)
            # 'from rk_yolo_ros.core import settings' imports the module core.settings
            modules += [f'{base}.{alias.name}' for alias in node.names
                        if base.startswith('rk_yolo_ros')]
    return modules


def layer_of(module):
    """Return the layer of one of our module names ('' for the package's top level)."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else ''


def package_files():
    """Return (layer, path) of every Python file of the package."""
    return [(layer_of('.'.join(p.relative_to(ROOT).with_suffix('').parts)), p)
            for p in sorted(PACKAGE.rglob('*.py'))]


@pytest.mark.parametrize('layer,path', package_files(),
                         ids=[str(p.relative_to(ROOT)) for _, p in package_files()])
def test_each_module_imports_only_the_layers_below_it(layer, path):
    """The imports of every module respect its layer's rules."""
    ours = [m for m in imported_modules(path) if m.startswith('rk_yolo_ros.')]
    wrong = [m for m in ours if layer_of(m) and layer_of(m) not in ALLOWED[layer]]
    assert not wrong, f'{path.name} ({layer}) imports {wrong}'
    ros = sorted({m for m in imported_modules(path) if m.split('.')[0] in ROS_PACKAGES})
    if layer != 'ros':
        assert not ros, f'{path.name} ({layer or "top level"}) imports ROS packages {ros}'
    if layer not in ('core', 'yolo', 'messages'):  # the adapters
        inner = sorted({m for m in ours if layer_of(m) == 'core' and len(m.split('.')) > 2
                        and m.split('.')[2] not in CORE_PUBLIC})
        assert not inner, f'{path.name} reaches into the core: {inner}'


def test_benchmarks_and_launch_files_use_the_public_core_only():
    """benchmarks/ and launch/ import the core's public modules only."""
    for path in sorted(ROOT.glob('benchmarks/*.py')) + sorted(ROOT.glob('launch/*.py')):
        inner = sorted({m for m in imported_modules(path)
                        if m.startswith('rk_yolo_ros.core.') and m.split('.')[2]
                        not in CORE_PUBLIC})
        assert not inner, f'{path.name} reaches into the core: {inner}'


def test_the_rules_catch_a_violation(tmp_path):
    """The import reader sees function-level and relative imports (the test can fail)."""
    source = tmp_path / 'rk_yolo_ros' / 'core' / 'bad.py'
    source.parent.mkdir(parents=True)
    source.write_text('def f():\n    import rclpy\n    from ..yolo import letterbox\n')
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        modules = imported_modules(source)
    finally:
        ROOT = saved
    assert 'rclpy' in modules and 'rk_yolo_ros.yolo.letterbox' in modules
