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

"""Bag in, bag out: `rk-yolo run` on real rosbag2 files, read back with rosbags."""

import json
import os
import pathlib
import subprocess
import sys

from module_checks import requires
from offline_helpers import (BAG_DELAY_NS, count_video_frames, FAST_RUN, header_ns, read_bag,
                             read_jsonl, stamp_of, write_image_bag)
import pytest

from rk_yolo_ros import cli

pytestmark = requires('rosbags', extra='bag')

REPO = pathlib.Path(__file__).resolve().parents[1]
COUNT = 12


def check_output_bag(path, base_topic, count=COUNT, missing=(), output_height=96,
                     other_bases=()):
    """Check one Detection2DArray + one annotated Image per good input frame, stamps kept."""
    messages = read_bag(path)
    types = messages.pop('__types__')
    detections_topic, image_topic = f'{base_topic}/detections', f'{base_topic}/annotated'
    kinds = (('detections', 'vision_msgs/msg/Detection2DArray'),
             ('annotated', 'sensor_msgs/msg/Image'))
    expected_types = {f'{base}/{kind}': message_type for base in (base_topic,) + other_bases
                      for kind, message_type in kinds}
    assert types == expected_types
    expected = [i for i in range(count) if i not in missing]
    for topic in (detections_topic, image_topic):
        stamps = [header_ns(message) for _, message in messages[topic]]
        assert stamps == [stamp_of(i) for i in expected], topic  # every frame, in order
        assert [t for t, _ in messages[topic]] == [stamp_of(i) + BAG_DELAY_NS for i in expected]
        assert {m.header.frame_id for _, m in messages[topic]} == {'cam_optical'}
    for _, image in messages[image_topic]:
        assert (image.height, image.width, image.encoding) == (output_height, 128, 'bgr8')
        assert image.step == 128 * 3 and len(image.data) == 128 * 3 * output_height
    for _, array in messages[detections_topic]:
        for detection in array.detections:
            assert detection.header.stamp == array.header.stamp
            box = detection.bbox
            # boxes are in the INPUT frame's pixels (160x120), not the 96-row annotated frame
            assert -1 <= box.center.position.x <= 161 and -1 <= box.center.position.y <= 121
            assert detection.results[0].hypothesis.class_id  # a class name (COCO for emulated)
    return messages


def test_raw_image_bag_round_trip_sqlite(tmp_path):
    """Image topic, sqlite3 in and out: every frame comes back once, in order, stamps kept."""
    bag = write_image_bag(tmp_path / 'in_bag', COUNT)
    out, jsonl, summary_path = tmp_path / 'out_bag', tmp_path / 'd.jsonl', tmp_path / 's.json'
    code = cli.main(['run', str(bag), '--topic', '/cam/image_raw', '--bag', str(out),
                     '--jsonl', str(jsonl), '--summary-json', str(summary_path)] + FAST_RUN)
    assert code == 0
    messages = check_output_bag(out, '/cam/image_raw')
    assert sum(len(a.detections) for _, a in messages['/cam/image_raw/detections']) > 0
    records = read_jsonl(jsonl)
    assert [r['index'] for r in records] == list(range(COUNT))
    assert all(r['status'] == 'ok' for r in records)
    assert [r['bag_timestamp_ns'] for r in records] == \
        [stamp_of(i) + BAG_DELAY_NS for i in range(COUNT)]
    assert {r['topic'] for r in records} == {'/cam/image_raw'}  # which input each line is
    assert (records[0]['width'], records[0]['height']) == (160, 120)
    summary = json.loads(summary_path.read_text())
    assert (summary['frames_read'], summary['processed'], summary['failed'],
            summary['skipped']) == (COUNT, COUNT, 0, 0)
    assert {o['kind']: o['frames'] for o in summary['outputs']} == {'jsonl': COUNT,
                                                                    'bag': COUNT}
    assert len(summary['workers']) == 2
    assert sum(w['frames_done'] for w in summary['workers']) == COUNT


def test_compressed_image_bag_round_trip_mcap(tmp_path):
    """
    Take the only image topic (CompressedImage) of an mcap bag; write an mcap bag.

    The outputs sit beside the raw topic (/cam/image_raw/detections), not under
    /cam/image_raw/compressed/: image_transport's suffix is dropped.
    """
    bag = write_image_bag(tmp_path / 'in_bag', COUNT, storage='mcap', raw_topic=None)
    out = tmp_path / 'out_bag'
    code = cli.main(['run', str(bag), '--bag', str(out), '--bag-storage', 'mcap'] + FAST_RUN)
    assert code == 0
    assert list(out.glob('*.mcap')), 'expected an mcap storage file'
    check_output_bag(out, '/cam/image_raw')


@pytest.mark.parametrize('compressed_format', ['jpeg', 'png'])
def test_truncated_compressed_images_fail_with_the_reason(tmp_path, capsys, compressed_format):
    """A CompressedImage cut in half (jpeg or png) fails its frame: no grey frame, no skip."""
    bag = write_image_bag(tmp_path / 'in_bag', COUNT, raw_topic=None, broken=(3, 8),
                          compressed_format=compressed_format)
    out, jsonl = tmp_path / 'out_bag', tmp_path / 'd.jsonl'
    code = cli.main(['run', str(bag), '--bag', str(out), '--jsonl', str(jsonl)] + FAST_RUN)
    assert code == 3
    text = capsys.readouterr().out
    assert f'{COUNT} read, {COUNT - 2} processed, 2 failed' in text
    assert f'truncated {compressed_format} data' in text
    check_output_bag(out, '/cam/image_raw', missing=(3, 8))
    records = read_jsonl(jsonl)
    assert [r['status'] for r in records] == ['failed' if i in (3, 8) else 'ok'
                                              for i in range(COUNT)]
    assert f'without the {compressed_format} end marker' in records[3]['error']
    assert records[3]['topic'] == '/cam/image_raw/compressed'


def test_bag_round_trip_via_subprocess(tmp_path):
    """The installed-style entry point (python -m rk_yolo_ros) does the same in a new process."""
    bag = write_image_bag(tmp_path / 'in_bag', COUNT)
    out = tmp_path / 'out_bag'
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run(
        [sys.executable, '-m', 'rk_yolo_ros', 'run', str(bag / 'in_bag.db3'), '--topic',
         '/cam/image_raw/compressed', '--bag', str(out)] + FAST_RUN,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env,
        timeout=120)
    assert result.returncode == 0, result.stderr
    assert f'{COUNT} read, {COUNT} processed, 0 failed' in result.stdout
    assert 'skipped:    0' in result.stdout
    check_output_bag(out, '/cam/image_raw')


def test_undecodable_frame_is_counted_failed_not_skipped(tmp_path, capsys):
    """A truncated Image message fails its frame with the reason; the rest go through."""
    bag = write_image_bag(tmp_path / 'in_bag', COUNT, compressed_topic=None, broken=(4,))
    out, jsonl = tmp_path / 'out_bag', tmp_path / 'd.jsonl'
    code = cli.main(['run', str(bag), '--bag', str(out), '--jsonl', str(jsonl)] + FAST_RUN)
    assert code == 3  # finished, but a frame failed
    text = capsys.readouterr().out
    assert f'{COUNT} read, {COUNT - 1} processed, 1 failed' in text
    assert 'frame 4: message 4 on /cam/image_raw: truncated image data' in text
    check_output_bag(out, '/cam/image_raw', missing=(4,))
    records = read_jsonl(jsonl)
    assert [r['index'] for r in records] == list(range(COUNT))  # the failure in its place
    assert records[4]['status'] == 'failed' and 'truncated' in records[4]['error']
    assert records[4]['stamp'] == {'sec': stamp_of(4) // 10**9, 'nanosec': stamp_of(4) % 10**9}


def test_bag_without_image_topic_is_refused(tmp_path, capsys):
    """A bag with no Image/CompressedImage topic: exit 2, naming the bag and its topics."""
    bag = write_image_bag(tmp_path / 'in_bag', 3, raw_topic=None, compressed_topic=None)
    out = tmp_path / 'out_bag'
    assert cli.main(['run', str(bag), '--bag', str(out)] + FAST_RUN) == 2
    error = capsys.readouterr().err
    assert 'has no sensor_msgs Image or CompressedImage topic' in error
    assert '/status (std_msgs/msg/String)' in error
    assert not out.exists()


def test_bag_topic_choice_errors(tmp_path, capsys):
    """
    Two image topics of one camera cannot share their outputs; wrong topics are named.

    /cam/image_raw and /cam/image_raw/compressed would both write /cam/image_raw/detections:
    one camera twice, so --topic must pick one. Without outputs that clash both are read.
    """
    bag = write_image_bag(tmp_path / 'in_bag', 3)
    out = tmp_path / 'out_bag'
    assert cli.main(['run', str(bag), '--bag', str(out)] + FAST_RUN) == 2
    assert ('image topics /cam/image_raw and /cam/image_raw/compressed would share their '
            'outputs (/cam/image_raw/detections)') in capsys.readouterr().err
    assert not out.exists()
    assert cli.main(['run', str(bag), '--jsonl', str(tmp_path / 'd.jsonl')] + FAST_RUN) == 0
    assert '6 read, 6 processed' in capsys.readouterr().out
    assert cli.main(['run', str(bag), '--topic', '/nope'] + FAST_RUN) == 2
    assert "has no topic '/nope'" in capsys.readouterr().err
    assert cli.main(['run', str(bag), '--topic', '/status'] + FAST_RUN) == 2
    assert 'carries std_msgs/msg/String' in capsys.readouterr().err


def test_a_bag_of_several_cameras_is_read_whole_in_one_run(tmp_path, capsys):
    """
    Two cameras (raw and compressed) in one bag: each gets its own outputs, in its order.

    Every frame of each topic is in that topic's output bag topics, its JSON lines and its
    own video; a frame broken on both cameras fails on both, in its place in each.
    """
    bag = write_image_bag(tmp_path / 'in_bag', COUNT, raw_topic='/left/image_raw',
                          compressed_topic='/right/image_raw/compressed', broken=(5,))
    out, jsonl, video = tmp_path / 'out_bag', tmp_path / 'd.jsonl', tmp_path / 'cams.mp4'
    summary_path = tmp_path / 's.json'
    code = cli.main(['run', str(bag), '--bag', str(out), '--jsonl', str(jsonl), '--video',
                     str(video), '--summary-json', str(summary_path), '--track'] + FAST_RUN)
    assert code == 3  # done, one frame of each camera failed
    text = capsys.readouterr().out
    assert f'{2 * COUNT} read, {2 * COUNT - 2} processed, 2 failed' in text
    assert f'topic:      /left/image_raw: {COUNT} read, {COUNT - 1} processed, 1 failed' in text
    check_output_bag(out, '/left/image_raw', missing=(5,), other_bases=('/right/image_raw',))
    check_output_bag(out, '/right/image_raw', missing=(5,), other_bases=('/left/image_raw',))
    records = read_jsonl(jsonl)
    for topic in ('/left/image_raw', '/right/image_raw/compressed'):
        mine = [r for r in records if r['topic'] == topic]
        assert [r['stamp']['nanosec'] + 10**9 * r['stamp']['sec'] for r in mine] == \
            [stamp_of(i) for i in range(COUNT)], topic
        assert [r['status'] for r in mine] == ['failed' if i == 5 else 'ok'
                                               for i in range(COUNT)]
        # tracked (each camera by its own tracker: test_tracking, test_node_cameras)
        assert all('track_id' in d for r in mine if r['status'] == 'ok'
                   for d in r['detections'])
    assert any(d['track_id'] for r in records for d in r.get('detections', []))
    assert count_video_frames(tmp_path / 'cams_left.mp4')[0] == COUNT - 1
    assert count_video_frames(tmp_path / 'cams_right.mp4')[0] == COUNT - 1
    assert not video.exists()
    summary = json.loads(summary_path.read_text())
    assert summary['topics'] == {
        '/left/image_raw': {'frames_read': COUNT, 'processed': COUNT - 1, 'failed': 1,
                            'cancelled': 0},
        '/right/image_raw/compressed': {'frames_read': COUNT, 'processed': COUNT - 1,
                                        'failed': 1, 'cancelled': 0}}
    assert sorted(o['kind'] for o in summary['outputs']) == ['bag', 'jsonl', 'video', 'video']


def test_topics_are_picked_by_repeating_topic(tmp_path, capsys):
    """--topic twice picks two cameras; one name for the outputs of several is refused."""
    bag = write_image_bag(tmp_path / 'in_bag', 4, raw_topic='/left/image_raw',
                          compressed_topic='/right/image_raw/compressed')
    out = tmp_path / 'out_bag'
    common = ['run', str(bag), '--topic', '/right/image_raw/compressed', '--topic',
              '/left/image_raw', '--bag', str(out)] + FAST_RUN
    assert cli.main(common + ['--det-topic', '/all/detections']) == 2
    assert ('--det-topic /all/detections names one topic, but the bag gives 2 image topics'
            in capsys.readouterr().err)
    assert cli.main(common + ['--image-topic', 'none']) == 0
    types = read_bag(out)['__types__']
    assert types == {'/right/image_raw/detections': 'vision_msgs/msg/Detection2DArray',
                     '/left/image_raw/detections': 'vision_msgs/msg/Detection2DArray'}


def test_corrupt_bag_is_refused(tmp_path, capsys):
    """A .db3 that is not a database, and a bag folder with broken metadata: exit 2."""
    garbage = tmp_path / 'broken.db3'
    garbage.write_bytes(b'this is not an sqlite database' * 100)
    assert cli.main(['run', str(garbage)] + FAST_RUN) == 2
    assert f'cannot read {garbage} as a rosbag' in capsys.readouterr().err
    folder = write_image_bag(tmp_path / 'in_bag', 3)
    (folder / 'metadata.yaml').write_text('rosbag2_bagfile_information: [not, a, mapping')
    assert cli.main(['run', str(folder)] + FAST_RUN) == 2
    assert f'cannot read {folder} as a rosbag' in capsys.readouterr().err


def test_existing_output_bag_needs_overwrite(tmp_path, capsys):
    """An existing output bag is not silently replaced; --overwrite replaces it."""
    bag = write_image_bag(tmp_path / 'in_bag', 4, compressed_topic=None)
    out = tmp_path / 'out_bag'
    assert cli.main(['run', str(bag), '--bag', str(out)] + FAST_RUN) == 0
    assert cli.main(['run', str(bag), '--bag', str(out)] + FAST_RUN) == 2
    assert 'exists already' in capsys.readouterr().err
    assert cli.main(['run', str(bag), '--bag', str(out), '--overwrite'] + FAST_RUN) == 0
    check_output_bag(out, '/cam/image_raw', count=4)
