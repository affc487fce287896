"""Builds inference/models/{person_segmentation,pose_landmarks} from the TFLite models in the mediapipe wheel.

Run by `just models` in the throwaway venv .data/build-body (training/build/requirements-body.txt):

    .data/build-body/bin/python training/build/body_models.py

Both models are converted with tf2onnx (opset 17); tensors and nodes are then renamed canonically
(graph inputs and outputs keep their names), so a rebuild writes the same bytes.

- selfie_segmentation.tflite: MediaPipe's custom Convolution2DTransposeBias, which onnxruntime
  cannot run, becomes a standard ConvTranspose (2x2 kernel, stride 2, weights [out,h,w,in] ->
  [in,out,h,w], same bias). Checked on a rendered person at 256x256 against MediaPipe's own
  selfie segmentation and the TFLite interpreter, and against the rendered silhouette.
- pose_landmark_full.tflite: converted as is. Landmarks checked against the TFLite interpreter on
  square crops of rendered people.

Determinism: tf2onnx 1.17's optimisers iterate over sets of graph nodes, which hash by memory
address, so which of several equivalent rewrites wins varied between runs (189 to 191 nodes for
the segmentation model). Nodes hash by creation order (see tflite_to_onnx.py), and the script
re-runs itself with PYTHONHASHSEED=0 so sets of tensor names iterate in a fixed order too.

The conversion is in tflite_to_onnx.py, the checks in body_checks.py; this script writes the
models and their manifests.
"""

# ruff: noqa: E402  # the environment is fixed, and the project root put on sys.path, before importing

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])  # noqa: S606  # same script, fixed hash seed

import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import mediapipe as mp
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

from inference.body import INPUT
from training.build.body_checks import check_pose, check_segmentation, session
from training.build.tflite_to_onnx import OPSET, build, check, hash_nodes_by_creation_order

MODELS = ROOT / "inference" / "models"
MEDIAPIPE = Path(mp.__file__).parent
SEGMENTATION_TFLITE = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
POSE_TFLITE = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"


# -- manifests ----------------------------------------------------------------------------------


def _tensors(model: ort.InferenceSession, meanings: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Names, shapes and types as onnxruntime reads them from the built file."""

    def spec(arg: Any, meaning: str | None) -> dict[str, Any]:
        check(arg.type == "tensor(float)", arg.type)
        out: dict[str, Any] = {"name": arg.name, "shape": list(arg.shape), "dtype": "float32"}
        if meaning is not None:
            out["meaning"] = meaning
        return out

    return {
        "inputs": [spec(i, None) for i in model.get_inputs()],
        "outputs": [spec(o, meanings[o.name]) for o in model.get_outputs()],
    }


def manifest(
    name: str,
    data: bytes,
    source: str,
    task: str,
    meanings: dict[str, str],
    fit: str,
    verification: dict[str, Any],
) -> dict[str, Any]:
    tensors = _tensors(session(data), meanings)
    return {
        "name": name,
        "version": "1.0.0",
        "file": Path(source).stem + ".onnx",
        "sha256": hashlib.sha256(data).hexdigest(),
        "task": task,
        "sources": [
            {"package": "mediapipe", "version": mp.__version__, "licence": "Apache-2.0", "file": source}
        ],
        "built_with": {
            "tf2onnx": tf2onnx.__version__,
            "tensorflow": tf.__version__,
            "onnx": onnx.__version__,
            "opset": OPSET,
        },
        "inputs": tensors["inputs"],
        "outputs": tensors["outputs"],
        "preprocessing": {
            "colour": "RGB",
            "size": [INPUT, INPUT],
            "fit": fit,
            "normalise": "x / 255",
            "layout": "NHWC",
        },
        "verification": verification,
    }


def write(content: dict[str, Any], data: bytes) -> None:
    directory = MODELS / content["name"]
    previous = json.loads((directory / "manifest.json").read_text())
    expected = {k: [(t["name"], t["shape"]) for t in previous[k]] for k in ("inputs", "outputs")}
    actual = {k: [(t["name"], t["shape"]) for t in content[k]] for k in ("inputs", "outputs")}
    check(actual == expected, f"inputs/outputs differ from what the runtime uses: {actual} != {expected}")
    (directory / content["file"]).write_bytes(data)
    (directory / "manifest.json").write_text(json.dumps(content, indent=2) + "\n")
    print(f"  sha256 {content['sha256']} ({len(data)} bytes)")
    same = content["sha256"] == previous["sha256"]
    print(f"  same sha256 as the manifest it replaces (the committed one on a clean tree): {same}")
    print(f"  wrote {(directory / content['file']).relative_to(ROOT)} and manifest.json")


def main() -> None:
    # tf2onnx reads .tflite files through tf.lite.Interpreter too, which TensorFlow 2.19 deprecates.
    warnings.filterwarnings(
        "ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated", category=UserWarning
    )
    hash_nodes_by_creation_order()
    print(
        f"mediapipe {mp.__version__}, tf2onnx {tf2onnx.__version__}, tensorflow {tf.__version__}, onnx {onnx.__version__}, opset {OPSET}"
    )

    started = time.monotonic()
    tflite = MEDIAPIPE.parent / SEGMENTATION_TFLITE
    print(f"person_segmentation: {SEGMENTATION_TFLITE}")
    print(
        "  (tf2onnx reports TFL_Convolution2DTransposeBias as unsupported: it is replaced by a ConvTranspose)"
    )
    data = build(tflite, rewrite=True)
    verification = check_segmentation(data, tflite)
    content = manifest(
        "person_segmentation",
        data,
        SEGMENTATION_TFLITE,
        "person segmentation (who is person, per pixel)",
        {"activation_10": "person probability"},
        "resize the whole image (no aspect kept)",
        verification,
    )
    write(content, data)
    print(f"  {time.monotonic() - started:.1f} s")

    started = time.monotonic()
    tflite = MEDIAPIPE.parent / POSE_TFLITE
    print(f"pose_landmarks: {POSE_TFLITE}")
    data = build(tflite)
    verification = check_pose(data, tflite)
    content = manifest(
        "pose_landmarks",
        data,
        POSE_TFLITE,
        "33 body landmarks (BlazePose GHUM 3D, full) on a full-body square crop",
        {
            "Identity": "39 landmarks x (x, y, z, visibility, presence), x/y in input pixels",
            "Identity_1": "pose presence (probability)",
            "Identity_2": "segmentation (logit)",
            "Identity_3": "heatmaps",
            "Identity_4": "world landmarks (m)",
        },
        "square crop around the whole body, resized",
        verification,
    )
    write(content, data)
    print(f"  {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
