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
Class names of a model: COCO-80 by default, from ONNX metadata, or from a labels file.

Ultralytics stores ``names`` in an ONNX model's metadata as a dict literal such as
``"{0: 'person', 1: 'bicycle'}"``. RKNN models carry no names, so a labels file is given:
a YAML file with ``names:`` (a list, or a mapping id -> name, as in Ultralytics data files)
or a plain text file with one name per line.
"""

import ast
import pathlib
from typing import Dict, List, Optional, Union

COCO80 = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat',
    'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack',
    'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball',
    'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket',
    'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
    'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse',
    'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier',
    'toothbrush',
)

PathLike = Union[str, pathlib.Path]


class LabelsError(ValueError):
    """A labels file or model metadata could not be read as class names."""


def names_from_mapping(names: Union[Dict, List], source: str) -> List[str]:
    """Turn a names list or an {id: name} mapping into a list indexed by class id."""
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    if isinstance(names, dict):
        try:
            by_id = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError) as error:
            raise LabelsError(f'{source}: names keys must be class ids, got '
                              f'{list(names)[:5]}') from error
        if not by_id:
            return []
        if min(by_id) < 0:
            raise LabelsError(f'{source}: negative class id {min(by_id)} in names')
        return [by_id.get(i, str(i)) for i in range(max(by_id) + 1)]
    raise LabelsError(f'{source}: names must be a list or an id -> name mapping, '
                      f'got {type(names).__name__}')


def read_labels_file(path: PathLike) -> List[str]:
    """Read class names from a YAML file with ``names:`` or a one-name-per-line text file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'labels file not found: {path}')
    text = path.read_text(encoding='utf-8')
    if path.suffix.lower() in ('.yaml', '.yml') or text.lstrip().startswith('names:'):
        import yaml
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise LabelsError(f'{path} is not valid YAML: {error}') from error
        if not isinstance(data, dict) or 'names' not in data:
            raise LabelsError(f'{path} has no top-level "names:" (a list or id -> name map)')
        names = names_from_mapping(data['names'], str(path))
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise LabelsError(f'{path} holds no class names')
    return names


def onnx_metadata_names(model_path: PathLike) -> Optional[List[str]]:
    """Return the class names Ultralytics stored in an ONNX model's metadata, or None."""
    return metadata_names(_onnx_metadata(pathlib.Path(model_path)), f'{model_path} metadata')


def metadata_names(metadata: Dict[str, str], source: str) -> Optional[List[str]]:
    """Return the class names of an ONNX metadata mapping (its ``names`` entry), or None."""
    text = metadata.get('names')
    if not text:
        return None
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError) as error:
        raise LabelsError(f'{source}: "names" is not a literal: {text[:80]}') from error
    return names_from_mapping(names, source)


def _onnx_metadata(path: pathlib.Path) -> Dict[str, str]:
    if not path.is_file():
        raise FileNotFoundError(f'model file not found: {path}')
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as error:
            raise LabelsError(f'{path} is not a readable ONNX model: {error}') from error
        return {p.key: p.value for p in model.metadata_props}
    import onnxruntime
    try:
        session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    except Exception as error:
        raise LabelsError(f'{path} is not a readable ONNX model: {error}') from error
    return dict(session.get_modelmeta().custom_metadata_map)


def load_labels(model_path: Optional[PathLike] = None,
                labels_file: Optional[PathLike] = None) -> List[str]:
    """
    Return the class names for a model.

    A labels file wins; else the names in an ONNX model's metadata; else COCO-80.
    """
    if labels_file:
        return read_labels_file(labels_file)
    if model_path and str(model_path).lower().endswith('.onnx'):
        names = onnx_metadata_names(model_path)
        if names:
            return names
    return list(COCO80)


def label_for(names: List[str], class_id: int) -> str:
    """Return the name of a class id, or the id as text when the names do not cover it."""
    return names[class_id] if 0 <= class_id < len(names) else str(class_id)
