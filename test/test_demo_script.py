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

"""The demo script installs every extra that its own ``rk-yolo run`` line needs."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
# a flag of the demo's run line -> the extra (setup.py) that the flag cannot work without
EXTRA_FOR_FLAG = {'--track': 'tracking', '--backend onnx': 'onnx'}


def _demo_extras_and_run_line():
    script = (ROOT / 'scripts' / 'demo.sh').read_text()
    extras = re.search(r'^EXTRAS=([\w,-]+)', script, re.MULTILINE).group(1).split(',')
    run_line = re.search(r'rk-yolo" run (.*)$', script, re.MULTILINE).group(1)
    return extras, run_line


def _setup_extras():
    setup = (ROOT / 'setup.py').read_text()
    block = setup[setup.index('extras_require={'):]
    block = block[:block.index('}')]
    return set(re.findall(r"'([\w-]+)':", block))


def test_demo_installs_the_extras_its_run_line_needs():
    """A fresh machine's demo must not stop at 'tracking needs scipy' (it once did)."""
    extras, run_line = _demo_extras_and_run_line()
    needed = {extra for flag, extra in EXTRA_FOR_FLAG.items() if flag in run_line}
    assert needed, 'the demo runs with --track and the ONNX backend; the parsing broke'
    assert needed <= set(extras), f'demo.sh installs {extras}; its run line needs {needed}'


def test_demo_extras_exist_in_setup():
    """Every extra the demo names is one setup.py defines (pip only warns about a typo)."""
    extras, _ = _demo_extras_and_run_line()
    assert set(extras) <= _setup_extras()
