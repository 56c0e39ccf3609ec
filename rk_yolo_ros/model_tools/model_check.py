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
The model tools' view of the one ONNX model check (``rk_yolo_ros.yolo.model_check``).

Converting to RKNN needs more than running does: a fixed-size NCHW input, known output shapes,
NCHW split heads and the opset (so the ``onnx`` package). The shape rules themselves live in the
YOLO layer, where ``rk-yolo run`` and the node use them too.
"""

from rk_yolo_ros.model_tools.errors import ModelToolError
from rk_yolo_ros.yolo.model_check import (FAMILY_WORDS, ModelCheckError, OnnxModelInfo,
                                          read_onnx_model, require_fixed_size)


def inspect_onnx(path) -> OnnxModelInfo:
    """Read an ONNX model's input, outputs and class names; raise if tools cannot take it."""
    try:
        import onnx  # noqa: F401 - the tools read the opset, which only onnx reports
    except ImportError as error:
        raise ModelToolError('reading ONNX models needs the onnx package: pip install onnx') \
            from error
    try:
        return require_fixed_size(read_onnx_model(path, layout='nchw'))
    except ModelCheckError as error:
        raise ModelToolError(str(error)) from error


__all__ = ['FAMILY_WORDS', 'inspect_onnx', 'OnnxModelInfo']
