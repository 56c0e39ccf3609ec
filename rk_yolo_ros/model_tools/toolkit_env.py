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
Find the separate rknn-toolkit2 environment and run jobs in it as subprocesses.

rknn-toolkit2 pins numpy<=1.26.4, protobuf<=4.25.4 and old onnx and needs torch, so it lives
in its own virtual environment (made by ``scripts/setup_rknn_toolkit.sh``), never in the
environment rk_yolo_ros runs in. Jobs are single files run with that environment's python by
path, so they import nothing from this package; they take a JSON spec and write a JSON result.
"""

import json
import os
import pathlib
import subprocess
from typing import Optional, Tuple

from rk_yolo_ros.model_tools.errors import ModelToolError, ToolkitEnvMissing

ENV_VARIABLE = 'RK_YOLO_RKNN_ENV'
DEFAULT_ENV_DIR = '~/.cache/rk_yolo_ros/rknn-toolkit2-venv'
SETUP_SCRIPT_NAME = 'setup_rknn_toolkit.sh'


def env_dir() -> pathlib.Path:
    """Return where the toolkit environment is expected (``$RK_YOLO_RKNN_ENV`` or the default)."""
    return pathlib.Path(os.environ.get(ENV_VARIABLE) or DEFAULT_ENV_DIR).expanduser()


def setup_command() -> str:
    """Return the one command that sets the toolkit environment up, as a user should type it."""
    here = pathlib.Path(__file__).resolve()
    # the source tree's scripts/, or an installation's <prefix>/share/rk_yolo_ros/scripts/
    candidates = [here.parents[2] / 'scripts' / SETUP_SCRIPT_NAME]
    candidates += [parent / 'share' / 'rk_yolo_ros' / 'scripts' / SETUP_SCRIPT_NAME
                   for parent in here.parents]
    found = next((path for path in candidates if path.is_file()), None)
    script = (f'bash {found}' if found
              else f'scripts/{SETUP_SCRIPT_NAME} (in the rk_yolo_ros source tree)')
    if os.environ.get(ENV_VARIABLE):
        return f'{ENV_VARIABLE}={env_dir()} {script}'
    return script


def toolkit_python() -> pathlib.Path:
    """Return the toolkit environment's python; raise ToolkitEnvMissing if it is not set up."""
    folder = env_dir()
    python = folder / 'bin' / 'python'
    if not python.exists():
        raise ToolkitEnvMissing(
            f'the rknn-toolkit2 environment is not set up (no {python}); set it up with one '
            f'command: {setup_command()}  (or point {ENV_VARIABLE} at an existing one)')
    return python


def toolkit_status() -> Tuple[bool, str]:
    """Return (usable, reason): whether ``from rknn.api import RKNN`` works in the environment."""
    try:
        python = toolkit_python()
    except ToolkitEnvMissing as error:
        return False, str(error)
    probe = subprocess.run(
        [str(python), '-c', 'import rknn.api, numpy; print(numpy.__version__)'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    if probe.returncode != 0:
        last_line = (probe.stderr.strip().splitlines() or ['no output'])[-1]
        return False, (f'{python} cannot import rknn.api ({last_line}); rebuild it with '
                       f'{setup_command()} --force')
    return True, f'{env_dir()} (numpy {probe.stdout.strip()})'


def run_job(job_file: pathlib.Path, spec: dict, work_dir: pathlib.Path,
            timeout_s: Optional[float] = None, echo=None) -> Tuple[dict, str]:
    """
    Run a job file with the toolkit python on a JSON spec; return (result dict, full log).

    The job writes its result to ``spec['result']``; its stdout and stderr (the toolkit's log)
    go to ``work_dir/toolkit.log`` and are returned. ``echo``, if given, is called with each
    log line as it arrives. Raise ModelToolError if the job crashes without a result.
    """
    python = toolkit_python()
    work_dir.mkdir(parents=True, exist_ok=True)
    spec = dict(spec, result=str(work_dir / 'result.json'))
    spec_path = work_dir / 'spec.json'
    spec_path.write_text(json.dumps(spec, indent=2))
    log_path = work_dir / 'toolkit.log'
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)  # the main environment's packages must not leak into the job
    env.pop('PYTHONHOME', None)
    env['PYTHONUNBUFFERED'] = '1'
    lines = []
    with open(log_path, 'w') as log:
        process = subprocess.Popen(
            [str(python), str(job_file), str(spec_path)], cwd=str(work_dir), env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
            errors='replace')
        try:
            for line in process.stdout:
                log.write(line)
                lines.append(line)
                if echo is not None:
                    echo(line.rstrip('\n'))
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise ModelToolError(f'the rknn-toolkit2 job ran past {timeout_s} s; log: {log_path}')
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = ''.join(lines)
    result_path = pathlib.Path(spec['result'])
    if not result_path.is_file():
        tail = ''.join(lines[-15:])
        raise ModelToolError(
            f'the rknn-toolkit2 job exited with code {returncode} without a result '
            f'(log: {log_path}); last lines:\n{tail}')
    return json.loads(result_path.read_text()), text
