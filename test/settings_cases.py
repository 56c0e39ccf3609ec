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

"""Bad setting values and the one message every entry point (node, rk-yolo, launch) gives."""

# name, bad value, the whole message every entry point gives for it
BAD_VALUES = [
    ('conf_threshold', 1.5, 'conf_threshold must be a number in [0, 1], got 1.5'),
    ('iou_threshold', -0.1, 'iou_threshold must be a number in [0, 1], got -0.1'),
    ('conf_threshold', 'high', "conf_threshold must be a number in [0, 1], got 'high'"),
    ('max_detections', 0, 'max_detections must be an integer in [1, 10000], got 0'),
    ('max_detections', 2.5, 'max_detections must be an integer in [1, 10000], got 2.5'),
    ('workers', 0, 'workers must be an integer in [1, 64], got 0'),
    ('classes', [-1, 3], 'classes must be a list of class ids >= 0 (empty: all classes), got '
                         '[-1, 3] (-1 is negative)'),
    ('classes', [1.0], 'classes must be a list of class ids >= 0 (empty: all classes), got '
                       '[1.0]'),
    ('core_masks', [1, 7], 'core_masks must be a list of single NPU core masks 1, 2 or 4 (not '
                           'the joint mask 7), got [1, 7] (mask 7 runs one model on all three '
                           'NPU cores, which is slower for YOLO than one model copy per core)'),
    ('core_masks', [3], 'core_masks must be a list of single NPU core masks 1, 2 or 4 (not the '
                        'joint mask 7), got [3] (mask 3 is not a single RK3588 NPU core)'),
    ('cpu_affinity', [-2], 'cpu_affinity must be a list of CPU numbers >= 0 (empty: no '
                           'pinning), got [-2] (-2 is negative)'),
    ('backend', 'tpu', "backend must be one of 'auto', 'onnx', 'rknn', 'emulated', got 'tpu'"),
    ('start_method', 'thread', "start_method must be one of 'spawn', 'forkserver', 'fork', "
                               "got 'thread'"),
    ('input_size', '640', "input_size must be WIDTHxHEIGHT like 640x640, or '' (from the "
                          "model), got '640'"),
    ('slots', -1, 'slots must be an integer in [0, 1024], got -1'),
    ('output_height', 8, 'output_height must be an integer in [16, 4320], got 8'),
    ('publish_annotated', 'yes', "publish_annotated must be a boolean, got 'yes'"),
    ('image_topics', ['/left/image_raw', '/left/image_raw/compressed'],
     'image_topics must be a list of image topics, each naming its own camera (empty: the one '
     "topic image), got ['/left/image_raw', '/left/image_raw/compressed'] ('/left/image_raw' "
     "and '/left/image_raw/compressed' both give the camera name 'left')"),
]
