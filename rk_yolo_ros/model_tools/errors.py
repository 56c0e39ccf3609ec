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

"""Errors of the model tooling: one type, so the CLI can print them without a traceback."""


class ModelToolError(RuntimeError):
    """A model could not be exported, converted or verified; the message says why and what next."""


class ToolkitEnvMissing(ModelToolError):
    """The rknn-toolkit2 environment is not set up; the message gives the setup command."""
