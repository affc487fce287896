"""Model manifests: what a shipped ONNX file is, where it came from and how to feed it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import msgspec

MODELS_DIR = Path(__file__).parent / "models"


class TensorSpec(msgspec.Struct, frozen=True):
    name: str
    shape: list[Any]
    dtype: str


class Manifest(msgspec.Struct, frozen=True):
    name: str
    version: str
    file: str
    sha256: str
    task: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    preprocessing: dict[str, Any]
    sources: list[dict[str, Any]]
    directory: Path = Path()

    @property
    def path(self) -> Path:
        return self.directory / self.file


class ModelIntegrityError(RuntimeError):
    """A model file does not match the sha256 its manifest records."""


def load_manifest(directory: Path) -> Manifest:
    raw = json.loads((directory / "manifest.json").read_text())
    fields = {k: v for k, v in raw.items() if k in Manifest.__struct_fields__}
    return msgspec.convert({**fields, "directory": str(directory)}, Manifest, dec_hook=lambda t, v: Path(v))


def all_manifests(models_dir: Path = MODELS_DIR) -> dict[str, Manifest]:
    return {
        manifest.name: manifest
        for manifest in (
            load_manifest(d) for d in sorted(models_dir.iterdir()) if (d / "manifest.json").is_file()
        )
    }


def verify(manifest: Manifest) -> None:
    """Raises ModelIntegrityError when the file's sha256 differs from the manifest's."""
    digest = hashlib.sha256(manifest.path.read_bytes()).hexdigest()
    if digest != manifest.sha256:
        raise ModelIntegrityError(f"{manifest.path.name}: sha256 {digest} != manifest {manifest.sha256}")
