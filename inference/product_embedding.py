"""Product photo → unit vector (EfficientNet-Lite0 features). Bytes in, arrays out."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from inference.manifest import Manifest
from inference.session import OnnxSession

SIZE = 224
DIMENSIONS = 1280


class UnreadableImage(ValueError):
    """The bytes are not an image this model can read."""


def preprocess(data: bytes) -> np.ndarray:
    """(3, 224, 224) float32: RGB, EXIF-oriented, padded square with the border colour,
    resized, normalised ``(x - 127) / 128``.

    Raises:
        UnreadableImage: not a decodable image.
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.format == "JPEG":
                opened.draft("RGB", (SIZE * 2, SIZE * 2))
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"cannot decode the image ({type(exc).__name__})") from None
    width, height = image.size
    if width != height:
        pixels = np.asarray(image)
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        background = tuple(int(c) for c in np.median(border, axis=0))
        side = max(width, height)
        square = Image.new("RGB", (side, side), background)
        square.paste(image, ((side - width) // 2, (side - height) // 2))
        image = square
    image = image.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    array = (np.asarray(image, dtype=np.float32) - 127.0) / 128.0
    return array.transpose(2, 0, 1)


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


class ProductEmbedder:
    """Embeds product photos, one or many at a time."""

    def __init__(self, manifest: Manifest, *, intra_op_threads: int = 2, max_batch: int = 16) -> None:
        self.session = OnnxSession(manifest, intra_op_threads=intra_op_threads)
        self.max_batch = max_batch

    def embed_pixels(self, batch: np.ndarray) -> np.ndarray:
        """(n, 3, 224, 224) preprocessed pixels → (n, 1280) unit vectors."""
        out = []
        for start in range(0, len(batch), self.max_batch):
            chunk = np.ascontiguousarray(batch[start : start + self.max_batch], dtype=np.float32)
            out.append(self.session.run(["embedding"], {"pixels": chunk})[0])
        return normalise(np.concatenate(out)) if out else np.zeros((0, DIMENSIONS), np.float32)

    def embed(self, images: Sequence[bytes]) -> np.ndarray:
        """Raises UnreadableImage for the first image that cannot be decoded."""
        return self.embed_pixels(np.stack([preprocess(data) for data in images]))
