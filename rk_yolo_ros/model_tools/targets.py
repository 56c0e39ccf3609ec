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

"""Rockchip NPU targets that rknn-toolkit2 builds for."""

from rk_yolo_ros.model_tools.errors import ModelToolError

# Targets of the RKNPU2 generation that rknn-toolkit2 (2.x) builds for. The RK3588 is what
# rk_yolo_ros is made for (three NPU cores); the others build with the same toolkit.
SUPPORTED_TARGETS = ('rk3588', 'rk3576', 'rk3568', 'rk3566', 'rk3562')

# NPU core masks to check a model on, per target (RKNNLite NPU_CORE_0/1/2).
TARGET_CORE_MASKS = {
    'rk3588': (1, 2, 4),
    'rk3576': (1, 2),
    'rk3568': (1,),
    'rk3566': (1,),
    'rk3562': (1,),
}


def check_target(name: str) -> str:
    """Return the normalised target platform name; raise ModelToolError if unsupported."""
    normalised = str(name).strip().lower().replace('-', '')
    if normalised not in SUPPORTED_TARGETS:
        raise ModelToolError(
            f'unsupported target {name!r}: rknn-toolkit2 builds for '
            f'{", ".join(SUPPORTED_TARGETS)} (RK1808/RV1109/RV1126 need the old rknn-toolkit)')
    return normalised
