#!/usr/bin/env python3
"""Bootstrap: make sure .venv has the project installed, then run a `just` recipe in it.

    python3 dev.py up        # the whole stack with embedded PostgreSQL + Redis
    python3 dev.py test      # the test suite
    python3 dev.py --list    # every recipe

Needs only Python >= 3.11 and access to a package index. Re-installs when pyproject.toml
changes. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-pyproject.sha256"


def _venv_bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  # this script runs before the venv exists
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    if not _venv_bin("python").exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    print(
        "Installing Fashionistar and its tools into .venv (first run or pyproject.toml changed) ...",
        flush=True,
    )
    python = str(_venv_bin("python"))
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)  # noqa: S603
    subprocess.run([python, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"], check=True)  # noqa: S603
    STAMP.write_text(digest)


def main() -> None:
    ensure_environment()
    just = str(_venv_bin("just"))
    os.chdir(ROOT)
    env = {**os.environ, "PATH": f"{_venv_bin('python').parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    os.execve(just, [just, *sys.argv[1:]], env)  # noqa: S606  # hand the terminal to just


if __name__ == "__main__":
    main()
