"""Packaging for rk_yolo_ros: an ament_python package that also installs with plain pip."""

from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'rk_yolo_ros'
# 0.11 brought the storage plugins the bag sink uses; the sink's periodic sqlite3 commit reaches
# into the 0.11 writer's storage (rosbags has no public commit), so newer versions wait for a test.
ROSBAGS = 'rosbags>=0.11,<0.12'


def share_files(folder):
    """List the files of a top-level folder for data_files (share/<package>/<folder>)."""
    # Files only: a launch file imported as a module (the tests do) leaves launch/__pycache__/,
    # and data_files cannot install a folder (the next colcon build would fail).
    return (os.path.join('share', package_name, folder),
            sorted(path for path in glob(os.path.join(folder, '*')) if os.path.isfile(path)))


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        share_files('launch'),
        share_files('config'),
        share_files('rviz'),
        # so an installed rk-yolo convert can name the command that sets its toolkit up
        (os.path.join('share', package_name, 'scripts'), ['scripts/setup_rknn_toolkit.sh']),
    ],
    python_requires='>=3.10',  # Ubuntu 22.04 (Humble) and newer; rosbags 0.11 needs it
    # OpenCV is an extra: on a ROS machine apt's python3-opencv is the one cv_bridge is built
    # against, and a pip OpenCV beside it would shadow it (and may pull numpy 2).
    # tqdm: rk-yolo's progress bar (Ubuntu 22.04's python3-tqdm 4.57 is the oldest tested)
    install_requires=['numpy>=1.21', 'psutil', 'PyYAML', 'tqdm>=4.57'],
    # scipy (the tracker's assignment solver) is an extra too: detection alone does not need its
    # ~40 MB, and on a ROS machine rosdep installs apt's python3-scipy (package.xml), built for
    # apt's numpy.
    extras_require={
        'opencv': ['opencv-python-headless'],
        'onnx': ['onnxruntime'],
        'bag': [ROSBAGS],
        'tracking': ['scipy>=1.8'],
        'model-tools': ['onnx', 'onnxruntime', ROSBAGS],
        'test': ['pytest', ROSBAGS, 'onnxruntime', 'onnx', 'scipy>=1.8'],
    },
    zip_safe=True,
    maintainer='rk_yolo_ros maintainers',
    maintainer_email='maintainers@rk-yolo-ros.dev',
    description='No-skip YOLO object detection on the RK3588 NPU for ROS 2.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'rk-yolo = rk_yolo_ros.cli:main',
            'yolo_node = rk_yolo_ros.ros.yolo_node:main',
        ],
    },
)
