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
End-to-end throughput of yolo_node over ROS 2, against a bare relay node, in one run.

A publisher sends images (Reliable, keep_all) as fast as the middleware takes them to (a) a
bare rclpy relay that answers each image with a tiny message: the middleware's and rclpy's own
ceiling for such images on this machine, and (b) yolo_node with the EMULATED NPU backend (fixed
latency; no real inference). Each transport is measured: ``raw`` (bgr8 Image, random pixels)
and ``compressed`` (CompressedImage: a real photo as JPEG, from ``camera_like_jpeg`` of
``rk-yolo bench``; ``input_transport:=compressed``, decoded in the node's workers). Prints JSON
with the rates, their ratio, the ratio to the pipeline's ideal (workers / latency) and the CPU
per frame of the receiving process (the node's main process; its workers apart).
Needs a sourced ROS 2 and the package built in a colcon overlay (scripts/run_tests.sh does it).

    python benchmarks/node_throughput.py [--frames 300] [--width 1280] [--height 720]
        [--transports raw compressed] [--baseline-checkout ../main]

``--baseline-checkout`` also runs the node of another checkout (e.g. before a change) on the
same messages, in the same run.
"""

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
from rk_yolo_ros.offline.throughput_benchmark import camera_like_jpeg

RELAY = '--relay'
TRANSPORTS = ('raw', 'compressed')


def run_relay(transport):
    """Relay mode: answer every image with a std_msgs/Header on 'detections'."""
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import CompressedImage, Image
    from std_msgs.msg import Header

    rclpy.init()
    node = Node('relay')
    qos = _qos()
    publisher = node.create_publisher(Header, 'detections', qos)
    if transport == 'compressed':
        node.create_subscription(CompressedImage, 'image/compressed',
                                 lambda msg: publisher.publish(msg.header), qos)
    else:
        node.create_subscription(Image, 'image', lambda msg: publisher.publish(msg.header), qos)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _qos():
    """Reliable keep_all: nothing is lost, the publisher waits for the slowest reader."""
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=10, history=HistoryPolicy.KEEP_ALL,
                      reliability=ReliabilityPolicy.RELIABLE)


def make_message(transport, width, height):
    """Return the message to publish and a description of it."""
    from sensor_msgs.msg import CompressedImage, Image

    if transport == 'compressed':
        data, described = camera_like_jpeg(width, height)
        message = CompressedImage(format='jpeg')
        message.data.frombytes(data)
        return message, described
    message = Image(height=height, width=width, encoding='bgr8', step=width * 3)
    pixels = np.random.default_rng(0).integers(0, 255, height * width * 3, dtype=np.uint8)
    message.data.frombytes(pixels.tobytes())
    return message, f'{width}x{height} bgr8 (random pixels)'


def receiving_process(receiver):
    """Return the process that runs the receiving node (ros2 run starts it as a child)."""
    candidates = [receiver] + receiver.children()
    for process in candidates:
        try:
            if any('yolo_node' in part or RELAY in part for part in process.cmdline()[1:]) \
                    and not process.name().startswith('ros2'):
                return process
        except psutil.Error:
            continue
    return receiver


def cpu_seconds(process):
    """Return a process's CPU seconds so far (user + system)."""
    times = process.cpu_times()
    return times.user + times.system


def measure(command, answer_type, frames, message):
    """Start a receiver process, publish frames to it, return its answers per second."""
    import rclpy
    from rclpy.node import Node

    receiver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
    node = Node('node_throughput_bench')
    answers = []
    topic = 'image/compressed' if hasattr(message, 'format') else 'image'
    try:
        publisher = node.create_publisher(type(message), topic, _qos())
        node.create_subscription(answer_type, 'detections',
                                 lambda msg: answers.append(time.monotonic()), _qos())
        deadline = time.monotonic() + 60
        while publisher.get_subscription_count() == 0 or node.count_publishers('detections') == 0:
            if time.monotonic() > deadline or receiver.poll() is not None:
                raise RuntimeError('the receiver did not come up: ' +
                                   receiver.stderr.read().decode()[-2000:])
            rclpy.spin_once(node, timeout_sec=0.1)
        time.sleep(2.0)  # let discovery settle both ways
        process = receiving_process(psutil.Process(receiver.pid))
        cpu_before = cpu_seconds(process)
        started = time.monotonic()
        for index in range(frames):
            message.header.stamp.sec = index
            publisher.publish(message)
            rclpy.spin_once(node, timeout_sec=0)
        while len(answers) < frames and time.monotonic() < started + 300:
            rclpy.spin_once(node, timeout_sec=0.05)
        cpu = cpu_seconds(process) - cpu_before
    finally:
        os.killpg(receiver.pid, signal.SIGINT)
        try:
            receiver.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(receiver.pid, signal.SIGKILL)
        node.destroy_node()
    elapsed = answers[-1] - started if answers else float('nan')
    return {'answered': len(answers), 'seconds': round(elapsed, 2),
            'fps': round(len(answers) / elapsed, 1) if answers else 0.0,
            'receiving_process_cpu_ms_per_frame': round(cpu * 1000.0 / frames, 3)}


def checkout_node_command(folder):
    """
    Return the command that runs ``folder``'s own yolo_node, with that checkout first on the path.

    ``ros2 run`` would not do: its script loads the installed package's entry point, and the
    development install's import hook resolves every module the checkout lacks (or has moved)
    to this checkout, so the result would be a mix of both versions.
    """
    path = os.path.abspath(folder)
    try:
        with open(os.path.join(path, 'setup.py')) as setup_file:
            entry = re.search(r"'yolo_node\s*=\s*([\w.]+):(\w+)'", setup_file.read())
    except OSError:
        entry = None
    if entry is None:
        raise SystemExit(f'--baseline-checkout {folder}: no yolo_node entry point in its setup.py')
    module, function = entry.groups()
    code = (f'import sys; sys.path.insert(0, {path!r}); '
            f'from {module} import {function}; sys.exit({function}())')
    return [sys.executable, '-c', code]


def _describe_checkout(folder):
    """Name a checkout by its folder and commit."""
    done = subprocess.run(['git', '-C', folder, 'log', '-1', '--format=%h %s'],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          universal_newlines=True)
    return f'{os.path.abspath(folder)} ({done.stdout.strip() or "not a git checkout"})'


def main(argv=None):
    """Run the relay baseline and the node for each transport; print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--width', type=int, default=1280)
    parser.add_argument('--height', type=int, default=720)
    parser.add_argument('--workers', type=int, default=3)
    parser.add_argument('--latency-ms', type=float, default=16.7)
    parser.add_argument('--transports', nargs='+', choices=TRANSPORTS, default=list(TRANSPORTS))
    parser.add_argument('--baseline-checkout', metavar='DIR',
                        help='also run the node of this checkout of rk_yolo_ros (its own code '
                             'only), e.g. the main branch, in the same run')
    args = parser.parse_args(argv)
    import rclpy
    from std_msgs.msg import Header
    from vision_msgs.msg import Detection2DArray

    os.environ.setdefault('ROS_DOMAIN_ID', '57')
    ideal = args.workers / (args.latency_ms / 1000.0)
    load_before = os.getloadavg()
    cases = {}
    rclpy.init()
    try:
        for transport in args.transports:
            message, described = make_message(transport, args.width, args.height)
            relay = measure([sys.executable, os.path.abspath(__file__), RELAY, transport],
                            Header, args.frames, message)
            node_arguments = ['--ros-args', '-p', 'backend:=emulated',
                              '-p', f'workers:={args.workers}',
                              '-p', f'emulated_latency_ms:={args.latency_ms}',
                              '-p', 'qos_history:=keep_all',
                              '-p', f'input_transport:={transport}']
            node = measure(['ros2', 'run', 'rk_yolo_ros', 'yolo_node'] + node_arguments,
                           Detection2DArray, args.frames, message)
            cases[transport] = {
                'image': described,
                'bare_relay': relay,
                'yolo_node': node,
                'node_vs_relay': round(node['fps'] / relay['fps'], 3) if relay['fps'] else None,
                'node_vs_pipeline_ideal': round(node['fps'] / ideal, 3),
            }
            if args.baseline_checkout:
                baseline = measure(checkout_node_command(args.baseline_checkout) + node_arguments,
                                   Detection2DArray, args.frames, message)
                baseline['checkout'] = _describe_checkout(args.baseline_checkout)
                baseline['node_vs_pipeline_ideal'] = round(baseline['fps'] / ideal, 3)
                cases[transport]['yolo_node_of_baseline_checkout'] = baseline
    finally:
        rclpy.try_shutdown()
    print(json.dumps({
        'benchmark': 'node_throughput',
        'backend': 'emulated NPU backend (fixed sleep latency; not real inference)',
        'machine': {'platform': platform.platform(), 'cpus': os.cpu_count(),
                    'python': platform.python_version(),
                    'rmw': os.environ.get('RMW_IMPLEMENTATION', 'default'),
                    'load_average_1_5_15_before': load_before,
                    'load_average_1_5_15_after': os.getloadavg()},
        'inputs': {'frames': args.frames, 'qos': 'reliable keep_all', 'workers': args.workers,
                   'emulated_latency_ms': args.latency_ms,
                   'pipeline_ideal_fps': round(ideal, 1),
                   'cpu_note': 'receiving_process_cpu_ms_per_frame: CPU of the process that '
                               'runs the node (yolo_node: its main process, not its workers; '
                               'the relay: all of it), from the first publish to the last '
                               'answer, per frame'},
        'cases': cases,
    }, indent=2))
    return 0 if all(case['yolo_node']['answered'] == args.frames
                    for case in cases.values()) else 1


if __name__ == '__main__':
    if RELAY in sys.argv:
        run_relay(sys.argv[sys.argv.index(RELAY) + 1])
    else:
        sys.exit(main())
