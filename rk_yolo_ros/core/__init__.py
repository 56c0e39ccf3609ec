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
The ROS-free no-skip pipeline core: the five stages of a frame.

- intake (``pipeline.FramePipeline.submit``): into a free slot, or block (backpressure);
- slots (``frame_slots``): one shared-memory block of preallocated frame buffers;
- workers (``worker_pool``, ``worker_process``, ``cpu_affinity``): one process per NPU core;
- reorder (``reorder``): results released strictly in frame order;
- publish: the adapters' ``on_frame`` handlers (``rk_yolo_ros.ros``, ``rk_yolo_ros.offline``).

Adapters use the public API only: ``pipeline``, ``frame_processing``, ``settings``,
``counters``, ``health`` (diagnostics policy) and ``stamp_gaps`` (upstream loss). The core
imports no other layer of the package.
"""
