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

"""The node's parameters: one per setting of rk_yolo_ros.core.settings, read and checked there."""

import array
from typing import Any, Dict, Iterable

from rcl_interfaces.msg import ParameterDescriptor
from rk_yolo_ros.core import settings


def parameter_descriptor(item: settings.Setting) -> ParameterDescriptor:
    """
    Describe one setting as a ROS parameter: its help, read-only unless dynamic.

    The accepted values go into ``additional_constraints`` rather than a numeric range, so
    that ``settings.check`` is the one rule and the node, ``rk-yolo`` and the launch file refuse a
    bad value with the same message (rclpy would refuse an out-of-range value with its own
    words first). Typing is dynamic for the same reason, and because YAML writes 1 for 1.0 and
    an empty list without a type.
    """
    return ParameterDescriptor(description=item.help_text(), read_only=not item.dynamic,
                               additional_constraints=item.expected(), dynamic_typing=True)


def plain_value(item: settings.Setting, value: Any) -> Any:
    """Return a parameter value as settings.check takes it (rclpy arrays become lists)."""
    if value is None and item.kind in settings.LIST_KINDS:
        return []  # YAML's [] and an empty command-line list come without a type
    if isinstance(value, (array.array, list, tuple)):
        return list(value)
    return value


def declare_settings(node) -> None:
    """Declare one parameter per setting, with its default and descriptor."""
    for item in settings.SETTINGS:
        node.declare_parameter(item.name, item.default, parameter_descriptor(item))


def setting_values(node, changed: Iterable = ()) -> Dict[str, Any]:
    """
    Return every setting's value, checked, with ``changed`` (rclpy Parameters) applied.

    Raises ValueError with the settings' message for a bad value.
    """
    values = {item.name: plain_value(item, node.get_parameter(item.name).value)
              for item in settings.SETTINGS}
    values.update({parameter.name: plain_value(settings.BY_NAME[parameter.name],
                                               parameter.value)
                   for parameter in changed if parameter.name in settings.BY_NAME})
    return settings.check_all(values)
