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
Turn rknn-toolkit2's build log into a short list of findings in plain words.

The toolkit prints hundreds of lines (progress bars, register dumps, repeated compiler errors
that are not fatal). A user needs to know a few things: is INT8 likely to hurt this model, how
is the deployed model fed, did layers fall back or hit NPU limits. Known messages are
explained; unknown warnings and errors are passed on verbatim, each once with a count.
"""

from dataclasses import dataclass
import re
from typing import List, Optional

# Below this many calibration images the INT8 activation ranges are a guess.
FEW_CALIBRATION_IMAGES = 20

_ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')
_LEVEL = re.compile(r'^(?P<level>[WE]) (?P<text>.*)$')
_REGTASK = re.compile(r'REGTASK: The bit width of field value exceeds the limit')
_OUTLIER_HEADER = re.compile(r'found outlier value')
_OUTLIER_ROW = re.compile(
    r'^\s+(?P<name>\S+)\s+(?P<mean>[-\d.eE+]+)\s+(?P<std>[-\d.eE+]+)\s+'
    r'(?P<outlier>[-\d.eE+]+)\s*$')
_DTYPE = re.compile(r"default (?P<which>input|output) dtype of '(?P<name>[^']+)' is changed "
                    r"from '(?P<src>\w+)' to '(?P<dst>\w+)'")
_CALIBRATION = re.compile(r'Quantize calibration include (?P<count>\d+) samples')
_IGNORED = re.compile(r'(temperate env rknn_compute_order|Please take care of this change)')


@dataclass
class ToolkitFinding:
    """One thing the toolkit said, explained."""

    level: str  # 'error', 'warning' or 'note'
    message: str
    count: int = 1

    def __str__(self):
        """Return the finding as one line for the console."""
        repeat = f' (x{self.count})' if self.count > 1 else ''
        return f'{self.level}: {self.message}{repeat}'


def _clean_lines(text: str) -> List[str]:
    """Split the log into lines without colour codes or progress-bar redraws."""
    lines = []
    for raw in _ANSI.sub('', text).splitlines():
        line = raw.split('\r')[-1].rstrip()  # tqdm redraws the line with carriage returns
        if line:
            lines.append(line)
    return lines


class _Findings:
    """Collect findings in first-seen order, counting repeats of the same message."""

    def __init__(self):
        self.items: List[ToolkitFinding] = []
        self._index = {}

    def add(self, level: str, message: str, count: int = 1) -> None:
        key = (level, message)
        if key in self._index:
            self.items[self._index[key]].count += count
        else:
            self._index[key] = len(self.items)
            self.items.append(ToolkitFinding(level, message, count))


def _outlier_message(rows) -> str:
    shown = ', '.join(f'{name} (outlier {outlier:g}, mean |w| {mean:g})'
                      for name, mean, outlier in rows[:3])
    more = f' and {len(rows) - 3} more' if len(rows) > 3 else ''
    return (f'some weights have outlier values: {shown}{more}. INT8 may lose accuracy in those '
            'layers; the agreement check tells whether it matters (if not good enough, try '
            '--quantized-algorithm mmse, more calibration images, or --fp16).')


def parse_toolkit_log(text: str) -> List[ToolkitFinding]:
    """Return the findings of a toolkit log, in the order first seen."""
    findings = _Findings()
    lines = _clean_lines(text)
    register_overflows = 0
    int8_outputs = []
    calibration_count: Optional[int] = None
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        calibration = _CALIBRATION.search(line)
        if calibration:
            calibration_count = int(calibration.group('count'))
            continue
        match = _LEVEL.match(line)
        if not match:
            continue
        level = 'error' if match.group('level') == 'E' else 'warning'
        body = match.group('text').strip()
        if _REGTASK.search(body):
            register_overflows += 1
        elif _IGNORED.search(body):
            continue
        elif _OUTLIER_HEADER.search(body):
            rows = []
            while index < len(lines) and lines[index][:1].isspace():  # the indented table
                row = _OUTLIER_ROW.match(lines[index])
                if row:
                    rows.append((row.group('name'), float(row.group('mean')),
                                 float(row.group('outlier'))))
                index += 1
            findings.add('warning', _outlier_message(rows) if rows else
                         'some weights have outlier values; INT8 may lose accuracy there.')
        elif _DTYPE.search(body):
            dtype = _DTYPE.search(body)
            if dtype.group('which') == 'input':
                findings.add('note', f"the input '{dtype.group('name')}' is "
                             f"{dtype.group('dst')} on the NPU (was {dtype.group('src')}): the "
                             'model takes RGB uint8 images; the /255 scaling is built in.')
            else:
                int8_outputs.append(dtype.group('name'))
        else:
            body = re.sub(r'^\[[\d:.]+\]\s*', '', re.sub(r'^RKNN:\s*', '', body))
            findings.add(level, f'toolkit says: {body}')
    if int8_outputs:
        findings.add('note', (
            f'{len(int8_outputs)} outputs ({", ".join(int8_outputs[:3])}'
            f'{", ..." if len(int8_outputs) > 3 else ""}) are int8 on the NPU: RKNNLite '
            'dequantizes them to float32 on the CPU.'))
    if register_overflows:
        findings.add('warning', (
            f'the NPU compiler hit a register field limit {register_overflows} times (a tensor '
            'dimension above 8191, typically the 8400-anchor single output of an Ultralytics '
            'export). The build goes on, but those layers may run slowly or wrongly on the '
            'board: export with split heads first (rk-yolo export).'))
    if calibration_count is not None:
        if calibration_count < FEW_CALIBRATION_IMAGES:
            findings.add('warning', (
                f'INT8 was calibrated on only {calibration_count} images: activation ranges may '
                f'not cover your scenes; use {FEW_CALIBRATION_IMAGES}-100 frames from the '
                'deployment camera.'))
        else:
            findings.add('note', f'INT8 calibrated on {calibration_count} images.')
    return findings.items
