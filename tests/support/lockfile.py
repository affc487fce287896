"""Reading the lockfiles of requirements/ (uv's requirements format, with hashes)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.stack import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


@dataclass
class Pin:
    version: Version
    marker: str | None
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


def read_lockfile(name: str) -> dict[str, list[Pin]]:
    """Name -> its pins (more than one when versions differ by Python version or platform)."""
    pins: dict[str, list[Pin]] = {}
    current: Pin | None = None
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        stripped = line.strip()
        if match := PIN.match(line):
            current = Pin(Version(match[2]), match[3])
            pins.setdefault(canonicalize_name(match[1]), []).append(current)
        elif stripped.startswith("--hash=sha256:") and current is not None:
            current.hashes.append(stripped.split(":", 1)[1].rstrip(" \\"))
        elif stripped.startswith("#   ") and current is not None:
            current.via.append(stripped.removeprefix("#   ").strip())
        elif stripped.startswith("# via ") and current is not None:
            current.via.append(stripped.removeprefix("# via ").strip())
        elif stripped and not stripped.startswith("#"):
            raise AssertionError(f"{name}: not a pin, hash or comment: {line!r}")
    return pins
