"""Real product-photo embeddings for the dimension benchmark: generated photos through the real model.

Photos come from the demo catalog's generator (``devstack.demo.pictures``: a garment silhouette
of one of six kinds in one of 15 colours and 5 patterns on a light background), encoded as the
catalog stores them (JPEG, quality 88) and embedded from those bytes by the shipped
``product_embedding`` ONNX model, exactly as the inference worker does (``preprocess`` then the
session, L2-normalised). Every vector is a model output of its own photo: no noisy copies.

Two sets, each deterministic from the seed:

* ``catalog``: photos as the demo catalog renders them, looks drawn uniformly (garment kind,
  colour, pattern), each photo with its own picture seed (background tint, outline jitter,
  pattern scale, stripe direction, flower positions).
* ``reshot``: the same kind of photos taken differently: rotated up to 15 degrees, shrunk to
  55-90% and placed off centre in a 4:5 portrait frame, brighter or darker, more or less
  contrast, JPEG quality 70. A projection fitted on catalog photos meets here photos unlike the
  ones it was fitted on.

Embeddings are cached under the data directory, keyed by set, count, seed and the model file's
sha256, so a rerun measures without re-embedding.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageEnhance

from benchmarks.embedding_projection import Looks
from devstack.demo import pictures
from inference.manifest import Manifest
from inference.product_embedding import ProductEmbedder, preprocess

PhotoSet = Literal["catalog", "reshot"]
GARMENTS = ("tops", "outerwear", "dresses", "bottoms", "shoes", "accessories")
BATCH = 64


@dataclass(frozen=True)
class Photos:
    kind: PhotoSet
    vectors: np.ndarray  # (n, 1280) unit vectors
    looks: Looks
    # Seconds spent rendering and embedding (None when read from the cache).
    render_seconds: float | None
    embed_seconds: float | None


def _look(rng: random.Random) -> tuple[str, str, str]:
    return rng.choice(GARMENTS), rng.choice(list(pictures.COLOURS)), rng.choice(pictures.PATTERNS)


def reshoot(image: Image.Image, rng: random.Random) -> Image.Image:
    """The photo taken again: another angle, distance, framing and light."""
    side = image.size[0]
    background = image.getpixel((0, 0))
    turned = image.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BICUBIC, fillcolor=background)
    size = int(side * rng.uniform(0.55, 0.9))
    turned = turned.resize((size, size), Image.Resampling.BILINEAR)
    width, height = side, side * 5 // 4
    frame = Image.new("RGB", (width, height), background)
    frame.paste(turned, (rng.randint(0, width - size), rng.randint(0, height - size)))
    frame = ImageEnhance.Brightness(frame).enhance(rng.uniform(0.75, 1.15))
    return ImageEnhance.Contrast(frame).enhance(rng.uniform(0.8, 1.2))


def render(kind: PhotoSet, index: int, seed: int) -> tuple[bytes, tuple[str, str, str]]:
    """Photo ``index`` of a set: its JPEG bytes and its look (garment kind, colour, pattern)."""
    rng = random.Random(f"{kind}:{seed}:{index}")  # noqa: S311  # reproducible pictures, not secrets
    garment, colour, pattern = _look(rng)
    image = pictures.product_picture(garment, colour, pattern, rng.randrange(2**31))
    if kind == "reshot":
        return pictures.encode(reshoot(image, rng), "JPEG", quality=70), (garment, colour, pattern)
    return pictures.encode(image, "JPEG", quality=88), (garment, colour, pattern)


def _cache_path(cache_dir: Path, kind: PhotoSet, count: int, seed: int, manifest: Manifest) -> Path:
    return cache_dir / f"{kind}-n{count}-s{seed}-{manifest.sha256[:12]}.npz"


def load_or_embed(
    kind: PhotoSet, count: int, seed: int, manifest: Manifest, cache_dir: Path, *, threads: int = 2
) -> Photos:
    """``count`` photos of set ``kind``, embedded by the real model (or read from the cache)."""
    path = _cache_path(cache_dir, kind, count, seed, manifest)
    if path.exists():
        with np.load(path) as cached:
            looks = Looks(cached["garment"], cached["colour"], cached["pattern"])
            return Photos(kind, cached["vectors"], looks, None, None)
    embedder = ProductEmbedder(manifest, intra_op_threads=threads, max_batch=16)
    vectors: list[np.ndarray] = []
    labels: list[tuple[str, str, str]] = []
    render_seconds = embed_seconds = 0.0
    for start in range(0, count, BATCH):
        started = time.perf_counter()
        batch = [render(kind, i, seed) for i in range(start, min(count, start + BATCH))]
        pixels = np.stack([preprocess(data) for data, _ in batch])
        rendered = time.perf_counter()
        vectors.append(embedder.embed_pixels(pixels))
        render_seconds += rendered - started
        embed_seconds += time.perf_counter() - rendered
        labels.extend(look for _, look in batch)
    matrix = np.concatenate(vectors)
    looks = Looks(*(np.array(column) for column in zip(*labels, strict=True)))
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, vectors=matrix, garment=looks.garment, colour=looks.colour, pattern=looks.pattern)
    partial.replace(path)
    return Photos(kind, matrix, looks, round(render_seconds, 1), round(embed_seconds, 1))
