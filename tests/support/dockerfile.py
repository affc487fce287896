"""Static checks of the Dockerfile and .dockerignore (no Docker engine is needed to run them)."""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# Build tools that must not reach the final image.
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "git")
# What must never be sent to the build (local state, environments, caches, secrets).
MUST_IGNORE = (".git", ".data", ".venv", ".env", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and heredocs kept whole."""
    result: list[tuple[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        heredoc = re.search(r"<<-?'?(\w+)'?", line)
        if heredoc:
            body = []
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            line += "\n" + "\n".join(body)
        word, _, args = line.partition(" ")
        result.append((word.upper(), args.strip()))
    return result


def stages(text: str) -> list[Stage]:
    found: list[Stage] = []
    args: dict[str, str] = {}
    for word, rest in instructions(text):
        if word == "ARG" and not found:
            arg, _, default = rest.partition("=")
            args[arg] = default
        elif word == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            found.append(
                Stage(base=base, name=parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None)
            )
        elif found:
            found[-1].instructions.append((word, rest))
    return found


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether .dockerignore ``patterns`` keep ``path`` (relative to the context) out of the build."""
    excluded = False
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for raw in patterns:
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        options = {pattern, pattern.removeprefix("**/")} if pattern.startswith("**/") else {pattern}
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in options):
            excluded = not negate
    return excluded


def final_copies(stage: Stage) -> list[tuple[list[str], str]]:
    """(sources, destination) of the stage's COPY instructions from the build context."""
    copies = []
    for word, rest in stage.instructions:
        if word != "COPY":
            continue
        tokens = [t for t in shlex.split(rest) if not t.startswith("--")]
        if "--from=" in rest:
            continue
        copies.append((tokens[:-1], tokens[-1]))
    return copies


def targets(all_stages: list[Stage]) -> list[Stage]:
    """The stages images are built from: those no other stage builds on or copies from."""
    used = {s.base for s in all_stages} | {
        found[1]
        for s in all_stages
        for word, rest in s.instructions
        if word == "COPY" and (found := re.search(r"--from=(\S+)", rest))
    }
    return [s for s in all_stages if s.name not in used]


def lineage(all_stages: list[Stage], stage: Stage) -> list[Stage]:
    """``stage`` and the stages it is built on, the first one first."""
    by_name = {s.name: s for s in all_stages if s.name}
    chain = [stage]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def lockfiles_behind(all_stages: list[Stage], target: Stage) -> list[str]:
    """The lockfiles (requirements/*.txt) installed into the virtualenv ``target`` copies in."""
    by_name = {s.name: s for s in all_stages if s.name}
    found = []
    for stage in lineage(all_stages, target):
        for word, rest in stage.instructions:
            source = re.search(r"--from=(\S+)\s+/opt/venv\b", rest) if word == "COPY" else None
            if source and source[1] in by_name:
                for built in lineage(all_stages, by_name[source[1]]):
                    found += [
                        s for srcs, _ in final_copies(built) for s in srcs if s.startswith("requirements/")
                    ]
    return found


def problems(dockerfile: str, dockerignore: str) -> list[str]:
    """Everything wrong with the image definition, by the rules of the deployment issue."""
    all_stages = stages(dockerfile)
    if not all_stages:
        return ["no FROM"]
    found = [] if len(all_stages) >= 2 else ["not a multi-stage build"]
    found += _base_problems(all_stages)
    if "HEALTHCHECK" in (w for w, _ in instructions(dockerfile)):
        found.append("HEALTHCHECK present (the probes do it)")
    for rest in (r for s in all_stages for w, r in s.instructions if w == "RUN"):
        if "pip install" in rest and "--no-cache-dir" not in rest and "PIP_NO_CACHE_DIR=1" not in dockerfile:
            found.append(f"pip keeps its cache: {rest[:60]}")
        if "pip install" in rest and not re.search(r"pip install\b.*--require-hashes -r \S+\.txt", rest):
            found.append(f"pip installs what no lockfile pins (--require-hashes -r <lockfile>): {rest[:60]}")
    for target in targets(all_stages):
        found += _target_problems(all_stages, target)
    if len(all_stages) >= 2 and "api" not in {t.name for t in targets(all_stages)}:
        found.append("no api target (the API's image without onnxruntime and models)")
    return found + _ignore_problems(dockerignore.splitlines())


def _base_problems(all_stages: list[Stage]) -> list[str]:
    found = []
    names = {s.name for s in all_stages}
    for stage in all_stages:
        image, _, tag = stage.base.rpartition(":")
        if stage.base in names:
            continue
        if not image or tag in ("", "latest") or "/" in tag:
            found.append(f"base image {stage.base!r} is untagged or latest")
        elif "slim" not in tag:
            found.append(f"base image {stage.base!r} is not a slim image")
    return found


def _target_problems(all_stages: list[Stage], target: Stage) -> list[str]:
    found = []
    image = f"the {target.name or 'final'} image"
    steps = [step for stage in lineage(all_stages, target) for step in stage.instructions]
    users = [rest for word, rest in steps if word == "USER"]
    if not users:
        found.append(f"{image} runs as root (no USER)")
    elif users[-1].split(":")[0] in ("root", "0"):
        found.append(f"{image} runs as {users[-1]}")
    runs = [rest for word, rest in steps if word == "RUN"]
    for rest in runs:
        if re.search(r"\b(apt-get|apk|yum)\b.*\binstall\b", rest):
            found.append(f"{image} installs packages: {rest[:60]}")
        if "pip install" in rest:
            found.append(f"{image} runs pip install")
    found += [f"{image} has build tool {t}" for t in BUILD_TOOLS if any(t in r.split() for r in runs)]
    sources = [s for stage in lineage(all_stages, target) for srcs, _ in final_copies(stage) for s in srcs]
    models = any(s == "inference/" or s.startswith("inference/models") for s in sources)
    if target is all_stages[-1] and not models:
        found.append(f"the ONNX models (inference/models/) are not copied into {image} (the default target)")
    if target.name == "api":
        if any(s.startswith("inference") for s in sources):
            found.append(f"{image} copies inference/ (ONNX models the API never loads)")
        if lockfiles_behind(all_stages, target) != ["requirements/api.txt"]:
            found.append(f"{image}'s virtualenv is not built from requirements/api.txt alone")
    return found


def _ignore_problems(patterns: list[str]) -> list[str]:
    found = [
        f".dockerignore does not exclude {p}" for p in MUST_IGNORE if not dockerignore_excludes(patterns, p)
    ]
    for path in (
        "inference/models/product_embedding/efficientnet_lite0_embed.onnx",
        "core/settings.py",
        "db/migrations/env.py",
    ):
        if dockerignore_excludes(patterns, path):
            found.append(f".dockerignore excludes {path}, which the image needs")
    return found
