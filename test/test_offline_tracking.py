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

"""rk-yolo run --track: track ids in the JSON lines, in the output bag's Detection2D.id."""

from module_checks import requires
from offline_helpers import FAST_RUN, read_bag, read_jsonl, write_video
from rk_yolo_ros import cli

pytestmark = requires('rosbags', 'scipy', extra='bag,tracking')


def run(tmp_path, name, *extra):
    """Run rk-yolo on an 8-frame video (emulated backend: the same boxes every frame)."""
    video = write_video(tmp_path / 'in.mp4', 8)
    out = tmp_path / name
    code = cli.main(['run', str(video), '--jsonl', str(out / 'd.jsonl'), '--bag',
                     str(out / 'bag')] + FAST_RUN + list(extra) + ['--output-dir', str(out)])
    assert code == 0
    records = read_jsonl(out / 'd.jsonl')
    bag = read_bag(out / 'bag')
    arrays = [message for _, message in bag['/image/detections']]
    return records, arrays


def test_track_ids_reach_the_json_lines_and_the_bag(tmp_path):
    """With --track each box has a track id (JSON) and Detection2D.id (bag), the same one."""
    records, arrays = run(tmp_path, 'tracked', '--track')
    assert all('track_id' in d for r in records for d in r['detections'])
    last = [d['track_id'] for d in records[-1]['detections']]
    assert any(last) and last == [d['track_id'] for d in records[-2]['detections']]
    for record, array in zip(records, arrays):
        assert [d.id for d in array.detections] == [
            str(d['track_id']) if d['track_id'] else '' for d in record['detections']]


def test_without_track_there_are_no_ids(tmp_path):
    """Without --track the JSON lines have no track_id and Detection2D.id stays empty."""
    records, arrays = run(tmp_path, 'plain')
    assert not any('track_id' in d for r in records for d in r['detections'])
    assert {d.id for array in arrays for d in array.detections} == {''}
