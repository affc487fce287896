"""The docs that describe the tree and the configuration are checked against them."""

from __future__ import annotations

import re

import msgspec

from core.settings import Settings
from tests.support.stack import ROOT

README = (ROOT / "README.md").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()


def test_quick_start_is_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.strip()]
    assert [c.split("#")[0].strip() for c in commands] == ["python3 dev.py up", "python3 dev.py test"]


def test_layout_table_matches_the_tree() -> None:
    section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([\w.]+)/`", section, flags=re.MULTILINE))
    on_disk = {
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and p.name not in {"build", "dist"}
    }
    assert documented == on_disk


def test_every_setting_is_documented() -> None:
    for field in msgspec.structs.fields(Settings):
        name = field.name.upper()
        assert name in README, f"{name} missing from README"
        assert name in ENV_EXAMPLE, f"{name} missing from .env.example"
