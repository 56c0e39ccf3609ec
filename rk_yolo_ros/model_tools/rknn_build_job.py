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
Build an .rknn with rknn-toolkit2 and run its simulator, inside the toolkit environment.

Run as ``<toolkit python> rknn_build_job.py SPEC.json`` by ``toolkit_env.run_job``. It imports
only the standard library, numpy and ``rknn.api`` (nothing from rk_yolo_ros, whose environment
it does not share). The spec (JSON) holds:

- ``onnx``, ``rknn``: the model to load and the .rknn to write;
- ``target``: the target platform, e.g. ``rk3588``;
- ``quantize``: true for INT8 (then ``dataset``: a text file listing calibration images, one
  path a line), false for FP16;
- ``quantized_algorithm``: 'normal', 'mmse' or 'kl_divergence';
- ``verify_inputs``: an .npy file of letterboxed (N, H, W, 3) RGB uint8 images to run through
  the simulator right after the build (the simulator refuses a .rknn loaded from disk), and
  ``verify_outputs``: the .npz to write their raw outputs to (``image{i}_output{j}``);
- ``result``: where to write the JSON result.

The result holds ``ok``, ``stage`` (where it stopped), ``error``, ``toolkit_version``,
``seconds`` spent in each stage and ``output_shapes``. The toolkit logs to stdout; the
caller reads it.
"""

import json
import sys
import time
import traceback

import numpy as np


def _check(stage: str, code) -> None:
    """Raise if a toolkit call returned a non-zero code (it logs errors instead of raising)."""
    if code != 0:
        raise RuntimeError(f'{stage} returned {code}; see the toolkit log above')


def _toolkit_version() -> str:
    try:
        from importlib import metadata
        return metadata.version('rknn-toolkit2')
    except Exception:  # noqa: B902 - version is informative only
        return 'unknown'


def run(spec: dict) -> dict:
    """Build, export and (optionally) simulate one model as the spec says; return the result."""
    from rknn.api import RKNN

    result = {'ok': False, 'stage': 'start', 'error': None, 'seconds': {},
              'toolkit_version': _toolkit_version(), 'output_shapes': []}
    rknn = RKNN(verbose=bool(spec.get('verbose', False)))
    last = [time.monotonic()]

    def stage(name):
        result['stage'] = name
        print(f'[rk_yolo job] {name}', flush=True)

    def lap(name):
        now = time.monotonic()
        result['seconds'][name] = round(now - last[0], 2)  # this stage alone
        last[0] = now

    try:
        stage('config')
        # The model takes letterboxed RGB uint8 NHWC; normalisation to [0, 1] runs on the NPU.
        rknn.config(mean_values=[[0, 0, 0]], std_values=[[255, 255, 255]],
                    target_platform=spec['target'],
                    quantized_algorithm=spec.get('quantized_algorithm', 'normal'),
                    optimization_level=int(spec.get('optimization_level', 3)))
        stage('load_onnx')
        _check('load_onnx', rknn.load_onnx(model=spec['onnx']))
        lap('load')
        stage('build')
        quantize = bool(spec['quantize'])
        _check('build', rknn.build(do_quantization=quantize,
                                   dataset=spec.get('dataset') if quantize else None))
        lap('build')
        stage('export_rknn')
        _check('export_rknn', rknn.export_rknn(spec['rknn']))
        lap('export')
        if spec.get('verify_inputs'):
            stage('init_runtime')
            _check('init_runtime (simulator)', rknn.init_runtime())
            stage('simulate')
            images = np.load(spec['verify_inputs'])
            saved = {}
            for index in range(images.shape[0]):
                outputs = rknn.inference(inputs=[images[index:index + 1]], data_format='nhwc')
                if outputs is None:
                    raise RuntimeError(f'simulator inference returned None on image {index}')
                for number, output in enumerate(outputs):
                    saved[f'image{index}_output{number}'] = np.asarray(output, np.float32)
                result['output_shapes'] = [list(np.shape(o)) for o in outputs]
            np.savez(spec['verify_outputs'], **saved)
            lap('simulate')
        result['ok'] = True
        result['stage'] = 'done'
    except Exception as error:  # noqa: B902 - every failure goes back to the caller as data
        result['error'] = f'{type(error).__name__}: {error}'.strip()
        traceback.print_exc()
    finally:
        rknn.release()
    return result


def main(argv=None) -> int:
    """Read the spec named on the command line, run it, write the result; 0 if it succeeded."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print('usage: rknn_build_job.py SPEC.json', file=sys.stderr)
        return 2
    with open(argv[0]) as stream:
        spec = json.load(stream)
    try:
        result = run(spec)
    except Exception as error:  # noqa: B902 - e.g. rknn.api missing: report, do not crash
        traceback.print_exc()
        result = {'ok': False, 'stage': 'import', 'error': f'{type(error).__name__}: {error}'}
    with open(spec['result'], 'w') as stream:
        json.dump(result, stream, indent=2)
    return 0 if result['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
