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
the segmentation model). Nodes hash by creation order here, and the script re-runs itself with
PYTHONHASHSEED=0 so sets of tensor names iterate in a fixed order too.
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
import itertools
import json
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import mediapipe as mp
import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx
import tf2onnx.graph
from onnx import helper, numpy_helper
from PIL import Image

from devstack.demo.figures import Figure, render_figure
from inference.body import INPUT, body_crop

OPSET = 17
MODELS = ROOT / "inference" / "models"
MEDIAPIPE = Path(mp.__file__).parent
SEGMENTATION_TFLITE = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
POSE_TFLITE = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
MIN_IOU_VS_MEDIAPIPE = 0.99
MAX_LANDMARK_DIFF_PX = 0.01


class CheckFailed(RuntimeError):
    """A check of a built model failed; that model is not written."""


def check(ok: bool, message: object) -> None:
    """Like assert, but not removed by python -O."""
    if not ok:
        raise CheckFailed(str(message))


def _hash_nodes_by_creation_order() -> None:
    """Makes tf2onnx's sets of nodes iterate in a fixed order (see the module docstring).

    Graph copies (deepcopy) keep their originals' numbers, which are unique within a graph.
    """
    counter = itertools.count()
    node_class: Any = tf2onnx.graph.Node
    original_init = node_class.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        self._creation_index = next(counter)
        original_init(self, *args, **kwargs)

    node_class.__init__ = init
    node_class.__hash__ = lambda self: self._creation_index


# -- conversion ---------------------------------------------------------------------------------


def convert(tflite: Path) -> onnx.ModelProto:
    model, _ = tf2onnx.convert.from_tflite(str(tflite), opset=OPSET)
    return model


def _attribute(node: onnx.NodeProto, name: str) -> Any:
    return next(helper.get_attribute_value(a) for a in node.attribute if a.name == name)


def replace_transpose_conv(model: onnx.ModelProto) -> onnx.ModelProto:
    """MediaPipe's Convolution2DTransposeBias (NHWC, weights [out,h,w,in], bias) as an ONNX ConvTranspose.

    tf2onnx works in NCHW and leaves the custom node behind a Transpose to NHWC: the ConvTranspose
    takes that Transpose's input instead, and a Transpose back to NHWC gives the old output name.
    """
    graph = model.graph
    customs = [n for n in graph.node if n.op_type.endswith("Convolution2DTransposeBias")]
    check(len(customs) == 1, [n.op_type for n in customs])
    custom = customs[0]
    x, weights_name, bias_name = custom.input
    initializers = {i.name: i for i in graph.initializer}
    weights = numpy_helper.to_array(initializers[weights_name])
    check(weights.shape[1:3] == (2, 2), weights.shape)
    producer = next((n for n in graph.node if x in n.output), None)
    consumers = [n for n in graph.node if x in n.input]
    nodes = list(graph.node)
    before: list[onnx.NodeProto] = []
    if (
        producer is not None
        and producer.op_type == "Transpose"
        and list(_attribute(producer, "perm")) == [0, 2, 3, 1]
        and len(consumers) == 1
    ):
        x_nchw = producer.input[0]
        nodes.remove(producer)
    else:
        x_nchw = f"{x}__nchw"
        before = [helper.make_node("Transpose", [x], [x_nchw], perm=[0, 3, 1, 2])]
    kernel = numpy_helper.from_array(
        np.ascontiguousarray(weights.transpose(3, 0, 1, 2)), f"{weights_name}__iohw"
    )
    y = custom.output[0]
    replacement = [
        *before,
        helper.make_node(
            "ConvTranspose",
            [x_nchw, kernel.name, bias_name],
            [f"{y}__nchw"],
            kernel_shape=[2, 2],
            strides=[2, 2],
        ),
        helper.make_node("Transpose", [f"{y}__nchw"], [y], perm=[0, 2, 3, 1]),
    ]
    at = nodes.index(custom)
    nodes[at : at + 1] = replacement
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(weights_name in n.input for n in graph.node):
        graph.initializer.remove(initializers[weights_name])
    graph.initializer.append(kernel)
    return model


def canonicalise(model: onnx.ModelProto) -> onnx.ModelProto:
    """Tensors t00000.. in order of first use, nodes n0000_<op>, initializers in name order.

    tf2onnx's own names carry counters of the whole conversion; the graph's inputs and outputs
    keep their names (the runtime feeds and fetches them by name).
    """
    graph = model.graph
    keep = {i.name for i in graph.input} | {o.name for o in graph.output}
    names: dict[str, str] = {}

    def rename(tensor: str) -> str:
        if tensor == "" or tensor in keep:
            return tensor
        return names.setdefault(tensor, f"t{len(names):05d}")

    for index, node in enumerate(graph.node):
        node.input[:] = [rename(t) for t in node.input]
        node.output[:] = [rename(t) for t in node.output]
        node.name = f"n{index:04d}_{node.op_type}"
    unused = [i.name for i in graph.initializer if i.name not in names]
    check(not unused, f"initializers no node reads: {unused}")
    for initializer in graph.initializer:
        initializer.name = names[initializer.name]
    ordered = sorted(graph.initializer, key=lambda i: i.name)
    del graph.initializer[:]
    graph.initializer.extend(ordered)
    del graph.value_info[:]
    return model


def build(tflite: Path, *, rewrite: bool = False) -> bytes:
    model = convert(tflite)
    if rewrite:
        model = replace_transpose_conv(model)
    model = canonicalise(model)
    onnx.checker.check_model(model, full_check=True)
    custom = [n.op_type for n in model.graph.node if n.domain or n.op_type.startswith("TFL_")]
    check(not custom, f"nodes onnxruntime cannot run: {custom}")
    data: bytes = model.SerializeToString()
    again = canonicalise(replace_transpose_conv(convert(tflite)) if rewrite else convert(tflite))
    same = again.SerializeToString() == data
    print(f"  {len(model.graph.node)} nodes; converted twice, identical bytes: {same}")
    check(same, "two conversions gave different bytes")
    return data


# -- checks -------------------------------------------------------------------------------------


def tflite_run(tflite: Path, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """The TFLite interpreter's outputs by tensor name."""
    interpreter = tf.lite.Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


def session(data: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def pixels(image: Image.Image) -> np.ndarray:
    """As the runtime feeds the models: RGB resized to 256x256, x / 255, NHWC."""
    resized = image.convert("RGB").resize((INPUT, INPUT), Image.Resampling.BILINEAR)
    array: np.ndarray = np.asarray(resized, dtype=np.float32)[None] / 255.0
    return array


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def check_segmentation(data: bytes, tflite: Path) -> dict[str, Any]:
    figure = render_figure(INPUT, INPUT)  # the model's native input: nothing is resized
    x = pixels(figure.image)
    ours = session(data).run(["activation_10"], {"input_1": x})[0][0, :, :, 0]
    reference = next(iter(tflite_run(tflite, x).values()))[0, :, :, 0]
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmentation:
        mediapipe_mask = segmentation.process(np.asarray(figure.image)).segmentation_mask
    truth = np.asarray(figure.mask) > 127
    iou_mediapipe = iou(ours > 0.5, mediapipe_mask > 0.5)
    print(f"  rendered person at {INPUT}x{INPUT}, mask = probability > 0.5:")
    print(
        f"    IoU with MediaPipe's selfie segmentation: {iou_mediapipe:.4f} (at least {MIN_IOU_VS_MEDIAPIPE})"
    )
    print(f"    IoU with the TFLite interpreter's mask: {iou(ours > 0.5, reference > 0.5):.4f}")
    print(
        f"    probabilities vs TFLite interpreter, max abs diff: {float(np.abs(ours - reference).max()):.2e}"
    )
    print(f"    probabilities vs MediaPipe, max abs diff: {float(np.abs(ours - mediapipe_mask).max()):.2e}")
    print(f"    IoU with the rendered ground-truth silhouette: {iou(ours > 0.5, truth):.4f}")
    empty = session(data).run(["activation_10"], {"input_1": np.full_like(x, 236 / 255)})[0]
    print(f"    empty backdrop, highest probability: {float(empty.max()):.3f}")
    check(iou_mediapipe >= MIN_IOU_VS_MEDIAPIPE, iou_mediapipe)
    return {"iou_vs_mediapipe": iou_mediapipe}


def square_crop(figure: Figure) -> Image.Image:
    """The square around the drawn person, as the runtime crops it (body_crop, backdrop fill)."""
    crop = body_crop(np.asarray(figure.mask) > 127)
    if crop is None:
        raise CheckFailed("no person in the rendered mask")
    left, top, side = crop
    square = Image.new("RGB", (side, side), figure.image.getpixel((0, 0)))
    square.paste(figure.image, (-left, -top))
    return square


def check_pose(data: bytes, tflite: Path) -> dict[str, Any]:
    pose = session(data)
    names = [o.name for o in pose.get_outputs()]
    figures = {
        "720x1280": render_figure(),
        "720x1280 shifted 40 px": render_figure(seed_shift=40),
        "900x1200, 80% tall": render_figure(900, 1200, body_height=0.8),
    }
    worst = 0.0
    for label, figure in figures.items():
        x = pixels(square_crop(figure))
        ours = dict(zip(names, pose.run(names, {"input_1": x}), strict=True))
        reference = tflite_run(tflite, x)
        check(sorted(reference) == sorted(names), (sorted(reference), names))
        landmarks = np.abs(ours["Identity"] - reference["Identity"]).reshape(-1, 5)
        xy = float(landmarks[:, :2].max())
        worst = max(worst, xy)
        others = ", ".join(
            f"{n} {float(np.abs(ours[n] - reference[n]).max()):.1e} (values up to {float(np.abs(reference[n]).max()):.3g})"
            for n in names[1:]
        )
        print(
            f"  {label} crop: landmarks x/y max abs diff {xy:.2e} px; z/visibility/presence {float(landmarks[:, 2:].max()):.1e}"
        )
        print(f"    other outputs, max abs diff: {others}")
        print(f"    pose presence {float(ours['Identity_1'].ravel()[0]):.4f}")
        presence = ours["Identity_1"]
        check(bool(((presence >= 0.0) & (presence <= 1.0)).all()), "pose presence is a probability")
    print(
        f"  landmarks vs the TFLite interpreter, max abs diff: {worst:.2e} px of {INPUT} (limit {MAX_LANDMARK_DIFF_PX})"
    )
    check(worst < MAX_LANDMARK_DIFF_PX, worst)
    return {"max_abs_diff_landmarks_px": worst}


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
    _hash_nodes_by_creation_order()
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
