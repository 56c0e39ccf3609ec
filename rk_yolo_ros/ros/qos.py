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

"""The QoS of the node's topics, from its settings (see docs/ros.md for how to choose them)."""

from typing import Any, Mapping

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy


def input_qos(values: Mapping[str, Any]) -> QoSProfile:
    """Return the image subscription's QoS (qos_reliability, qos_history, qos_depth)."""
    return QoSProfile(
        depth=values['qos_depth'],
        history=(HistoryPolicy.KEEP_ALL if values['qos_history'] == 'keep_all'
                 else HistoryPolicy.KEEP_LAST),
        reliability=(ReliabilityPolicy.BEST_EFFORT if values['qos_reliability'] == 'best_effort'
                     else ReliabilityPolicy.RELIABLE))


def output_qos(values: Mapping[str, Any]) -> QoSProfile:
    """
    Return the outputs' QoS: Reliable, keep_last output_qos_depth.

    A Reliable publisher serves Reliable and Best-Effort subscribers alike (rviz2 defaults to
    Reliable); the depth lets a slow subscriber fall that many frames behind without a loss.
    """
    return QoSProfile(depth=values['output_qos_depth'], history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE)
