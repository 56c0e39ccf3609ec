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

"""Let the pipeline log through a node's rclpy logger (it calls the logging.Logger methods)."""

import traceback


class PipelineLog:
    """Give the pipeline the logging.Logger calls it uses, on top of the node's logger."""

    def __init__(self, logger):
        """Wrap an rclpy logger."""
        self._logger = logger

    @staticmethod
    def _text(message, args):
        return message % args if args else str(message)

    def debug(self, message, *args, **_):
        """Log at debug level."""
        self._logger.debug(self._text(message, args))

    def info(self, message, *args, **_):
        """Log at info level."""
        self._logger.info(self._text(message, args))

    def warning(self, message, *args, **_):
        """Log at warning level."""
        self._logger.warning(self._text(message, args))

    def error(self, message, *args, **_):
        """Log at error level."""
        self._logger.error(self._text(message, args))

    def exception(self, message, *args, **_):
        """Log at error level with the current traceback."""
        self._logger.error(self._text(message, args) + '\n' + traceback.format_exc())
