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
Publish health reports on /diagnostics: through diagnostic_updater where it is installed.

diagnostic_updater is the convention for ROS drivers (its ``Updater`` owns the 1 Hz timer, the
``diagnostic_updater.period`` parameter and the status names '<node>: <task>'); where it is not
installed (the minimal Jazzy tree, a bare install) the same statuses go out through a plain
publisher and timer of the node, named the same way. A node in a namespace names its statuses
with its full name ('/left/yolo_node: pipeline', diagnostic_updater's use_fqn), so nodes of
several cameras can be told apart. The reports come from the ROS-free ``rk_yolo_ros.core.health``.
"""

from typing import Callable, Dict, List

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rk_yolo_ros.core.health import Report

try:
    import diagnostic_updater
except ImportError:  # optional: the node publishes the same statuses itself
    diagnostic_updater = None

PERIOD_S = 1.0
USE_FQN = 'diagnostic_updater.use_fqn'


class DiagnosticsOutput:
    """Publish the reports ``make_reports()`` returns on /diagnostics, once a second."""

    def __init__(self, node, make_reports: Callable[[], List[Report]],
                 hardware_id: Callable[[], str]):
        """Start publishing for ``node``; ``hardware_id()`` names the backend and model."""
        self._node = node
        self._make_reports = make_reports
        self._hardware_id = hardware_id
        self._latest: Dict[str, Report] = {}
        self._names: List[str] = []
        namespaced = node.get_namespace() != '/'
        self._prefix = node.get_fully_qualified_name() if namespaced else node.get_name()
        if diagnostic_updater is not None:
            if not node.has_parameter(USE_FQN):
                node.declare_parameter(USE_FQN, namespaced)  # before the Updater reads it
            self._updater = diagnostic_updater.Updater(node, period=PERIOD_S)
            self._updater.setHardwareID(hardware_id())
            self._publisher = self._timer = None
        else:
            self._updater = None
            self._publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
            self._timer = node.create_timer(PERIOD_S, self._publish)
        self.set_report_names(['pipeline'])

    @property
    def through_updater(self) -> bool:
        """Return True when diagnostic_updater publishes the statuses."""
        return self._updater is not None

    def set_report_names(self, names: List[str]) -> None:
        """Say which reports there are (e.g. once the workers are known); the first leads."""
        if self._updater is not None:
            for name in self._names:
                self._updater.removeByName(name)
            for name in names:
                self._updater.add(name, lambda stat, name=name: self._fill(stat, name))
        self._names = list(names)

    def _fill(self, stat, name: str):
        """Fill ``stat`` from the report of that name (an Updater task; the first makes them)."""
        if name == self._names[0]:
            self._latest = {report.name: report for report in self._make_reports()}
        report = self._latest.get(name)
        if report is None:
            stat.summary(DiagnosticStatus.STALE, 'no report')
            return stat
        stat.summary(bytes([int(report.level)]), report.message)
        self._updater.setHardwareID(self._hardware_id())
        stat.hardware_id = self._hardware_id()
        for key, value in report.values.items():
            stat.add(key, value)
        return stat

    def _publish(self) -> None:
        """Timer of the plain publisher: every report, named as diagnostic_updater does."""
        hardware_id = self._hardware_id()
        array = DiagnosticArray(status=[
            DiagnosticStatus(level=bytes([int(report.level)]),
                             name=f'{self._prefix}: {report.name}',
                             message=report.message, hardware_id=hardware_id,
                             values=[KeyValue(key=k, value=v) for k, v in report.values.items()])
            for report in self._make_reports()])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(array)
