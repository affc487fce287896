"""Checks of the built segmentation and pose models on drawn people: against MediaPipe's own
selfie segmentation, the TFLite interpreter and the drawn silhouette. A failed check raises
CheckFailed, and that model is not written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mediapipe as mp
import numpy as np
import onnxruntime as ort
import tensorflow as tf
from PIL import Image

from devstack.demo.figures import Figure, render_figure
from inference.body import INPUT, body_crop
from training.build.tflite_to_onnx import CheckFailed, check

MIN_IOU_VS_MEDIAPIPE = 0.99
MAX_LANDMARK_DIFF_PX = 0.01


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
