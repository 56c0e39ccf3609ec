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
Compressed frames (bag CompressedImages, JPEG and PNG files) reach the pipeline compressed.

The reading process only checks them (format, signature, end marker): a truncated JPEG fails
there, as before; well-framed bytes that do not decode fail in the worker, at the decode stage,
in their place. Calibration (``frames()``) still gets decoded images.
"""

import cv2
from module_checks import requires
import numpy as np
from offline_helpers import (_typestore, BAG_DELAY_NS, FAST_RUN, frame_pixels, read_jsonl,
                             stamp_of)

from rk_yolo_ros import cli
from rk_yolo_ros.offline.sources import BagSource, ImageFolderSource

pytestmark = requires('rosbags', extra='bag')

TOPIC = '/cam/image_raw/compressed'
COUNT = 8
UNDECODABLE = 3  # JPEG framing (start and end markers) around bytes that are no JPEG
TRUNCATED = 5  # no end marker: refused by the checks in the reading process


def jpeg_payloads():
    """Return the CompressedImage data of each frame: good JPEGs and the two bad ones."""
    payloads = []
    for index in range(COUNT):
        ok, data = cv2.imencode('.jpg', frame_pixels(index))
        assert ok
        data = data.reshape(-1)
        if index == UNDECODABLE:
            data = np.frombuffer(b'\xff\xd8\xff\xe0' + bytes(600) + b'\xff\xd9', np.uint8)
        elif index == TRUNCATED:
            data = data[:len(data) // 2]
        payloads.append(data)
    return payloads


def write_compressed_bag(path, payloads):
    """Write one CompressedImage per payload (jpeg), stamped like the other offline bags."""
    from rosbags.rosbag2 import Writer
    store = _typestore()
    types = store.types
    with Writer(path, version=8) as writer:
        connection = writer.add_connection(TOPIC, 'sensor_msgs/msg/CompressedImage',
                                           typestore=store)
        for index, data in enumerate(payloads):
            sec, nanosec = divmod(stamp_of(index), 1_000_000_000)
            header = types['std_msgs/msg/Header'](
                stamp=types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec),
                frame_id='cam_optical')
            message = types['sensor_msgs/msg/CompressedImage'](header=header, format='jpeg',
                                                               data=data)
            writer.write(connection, stamp_of(index) + BAG_DELAY_NS,
                         store.serialize_cdr(message, connection.msgtype))
    return path


def test_bag_yields_checked_bytes_for_the_workers_and_images_for_calibration(tmp_path):
    payloads = jpeg_payloads()
    bag = write_compressed_bag(tmp_path / 'in_bag', payloads)
    source = BagSource(bag)
    try:
        items = list(source.encoded_frames())
        decoded = list(source.frames(select={0, TRUNCATED}))
    finally:
        source.close()
    assert [item.meta.index for item in items] == list(range(COUNT))
    for index, item in enumerate(items):
        assert item.image is None
        if index == TRUNCATED:
            assert item.encoded is None and 'truncated jpeg data' in item.error
        else:
            np.testing.assert_array_equal(item.encoded, payloads[index])
    assert decoded[0].image.shape == (120, 160, 3) and decoded[0].encoded is None
    assert decoded[1].image is None and 'truncated jpeg data' in decoded[1].error


def test_run_decodes_in_the_workers_and_fails_bad_frames_in_their_place(tmp_path, capsys):
    bag = write_compressed_bag(tmp_path / 'in_bag', jpeg_payloads())
    jsonl = tmp_path / 'd.jsonl'
    code = cli.main(['run', str(bag), '--jsonl', str(jsonl)] + FAST_RUN)
    assert code == 3  # finished, but frames failed
    assert f'{COUNT} read, {COUNT - 2} processed, 2 failed' in capsys.readouterr().out
    records = read_jsonl(jsonl)
    assert [r['index'] for r in records] == list(range(COUNT))
    failed = {r['index']: r for r in records if r['status'] == 'failed'}
    assert sorted(failed) == [UNDECODABLE, TRUNCATED]
    assert failed[UNDECODABLE]['stage'] == failed[TRUNCATED]['stage'] == 'decode'
    assert 'compressed frame of 606 bytes could not be decoded' in failed[UNDECODABLE]['error']
    assert 'truncated jpeg data' in failed[TRUNCATED]['error']
    for record in records:
        if record['status'] == 'ok':  # the size the worker decoded, reported back
            assert (record['width'], record['height']) == (160, 120)


def test_image_folder_hands_checked_jpeg_and_png_files_to_the_workers(tmp_path, capsys):
    """
    JPEG and PNG files stay compressed for the workers; other formats are decoded here.

    A truncated JPEG fails in the reading process (its end marker is missing), a well-framed
    but undecodable one in its worker; both in their place, named by the file.
    """
    folder = tmp_path / 'images'
    folder.mkdir()
    good = cv2.imencode('.jpg', frame_pixels(1))[1].tobytes()
    (folder / 'a_good.jpg').write_bytes(good)
    (folder / 'b_truncated.jpg').write_bytes(good[:len(good) // 2])
    (folder / 'c_undecodable.jpg').write_bytes(b'\xff\xd8\xff\xe0' + bytes(600) + b'\xff\xd9')
    cv2.imwrite(str(folder / 'd_good.png'), frame_pixels(2))
    cv2.imwrite(str(folder / 'e_good.bmp'), frame_pixels(3))
    items = list(ImageFolderSource.from_folder(folder).encoded_frames())
    assert [(item.encoded is not None, item.image is not None, bool(item.error))
            for item in items] == [(True, False, False), (False, False, True),
                                   (True, False, False), (True, False, False),
                                   (False, True, False)]
    assert bytes(items[0].encoded) == good
    jsonl = tmp_path / 'd.jsonl'
    assert cli.main(['run', str(folder), '--jsonl', str(jsonl)] + FAST_RUN) == 3
    records = read_jsonl(jsonl)
    assert [(r['file'], r['status']) for r in records] == [
        ('a_good.jpg', 'ok'), ('b_truncated.jpg', 'failed'), ('c_undecodable.jpg', 'failed'),
        ('d_good.png', 'ok'), ('e_good.bmp', 'ok')]
    assert 'truncated jpeg data' in records[1]['error'] and records[1]['stage'] == 'decode'
    assert 'compressed frame of 606 bytes could not be decoded' in records[2]['error']
    assert records[2]['stage'] == 'decode'
    assert all((r['width'], r['height']) == (160, 120) for r in records if r['status'] == 'ok')
