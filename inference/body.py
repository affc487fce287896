"""Person segmentation and body landmarks on a photo (MediaPipe models as ONNX). Arrays in, arrays out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from inference.manifest import Manifest
from inference.session import OnnxSession

INPUT = 256
# BlazePose's 33 landmarks, in model order (the model emits 39; the last 6 are auxiliary).
LANDMARKS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def _to_input(image: Image.Image) -> np.ndarray:
    resized = image.convert("RGB").resize((INPUT, INPUT), Image.Resampling.BILINEAR)
    array: np.ndarray = np.asarray(resized, dtype=np.float32)[None] / 255.0
    return array


class PersonSegmenter:
    """Per-pixel person probability for a photo."""

    def __init__(self, manifest: Manifest, *, intra_op_threads: int = 2) -> None:
        self.session = OnnxSession(manifest, intra_op_threads=intra_op_threads)

    def probabilities(self, image: Image.Image) -> np.ndarray:
        """(height, width) float32 in [0, 1], at the photo's size."""
        raw = self.session.run(["activation_10"], {"input_1": _to_input(image)})[0][0, :, :, 0]
        upscaled = Image.fromarray(raw.astype(np.float32)).resize(image.size, Image.Resampling.BILINEAR)
        probabilities: np.ndarray = np.clip(np.asarray(upscaled, dtype=np.float32), 0.0, 1.0)
        return probabilities


@dataclass(frozen=True)
class Landmark:
    x: float  # photo pixels
    y: float
    z: float
    visibility: float  # 0..1
    presence: float  # 0..1


@dataclass(frozen=True)
class Pose:
    presence: float  # 0..1, is there a person in the crop
    landmarks: dict[str, Landmark]
    crop: tuple[int, int, int, int]  # (left, top, side, side) in photo pixels


def body_crop(mask: np.ndarray, *, margin: float = 0.12) -> tuple[int, int, int] | None:
    """Square (left, top, side) around the person in a boolean mask, with a margin; None if empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    top, bottom, left, right = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    side = int(max(bottom - top, right - left) * (1 + 2 * margin)) + 1
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return int(cx - side / 2), int(cy - side / 2), side


class PoseEstimator:
    """BlazePose landmarks of the person inside a square crop of the photo."""

    def __init__(self, manifest: Manifest, *, intra_op_threads: int = 2) -> None:
        self.session = OnnxSession(manifest, intra_op_threads=intra_op_threads)

    def estimate(self, image: Image.Image, crop: tuple[int, int, int]) -> Pose:
        left, top, side = crop
        # Pixels outside the photo are filled with its top-left colour (a plain background).
        background = image.convert("RGB").getpixel((0, 0))
        square = Image.new("RGB", (side, side), background)
        square.paste(image.convert("RGB"), (-left, -top))
        landmarks, presence = self.session.run(["Identity", "Identity_1"], {"input_1": _to_input(square)})
        values = landmarks.reshape(-1, 5)[: len(LANDMARKS)]
        scale = side / INPUT
        found = {
            name: Landmark(
                x=float(left + row[0] * scale),
                y=float(top + row[1] * scale),
                z=float(row[2] * scale),
                visibility=float(_sigmoid(row[3])),
                presence=float(_sigmoid(row[4])),
            )
            for name, row in zip(LANDMARKS, values, strict=True)
        }
        # The pose-presence output is already a probability; the per-landmark scores are logits.
        score = float(np.clip(presence.reshape(-1)[0], 0.0, 1.0))
        return Pose(presence=score, landmarks=found, crop=(left, top, side, side))
