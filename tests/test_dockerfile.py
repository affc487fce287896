"""The image definition, checked without a Docker engine: multi-stage, slim and tagged bases, a
non-root user, no build tools or caches in the final stage, the models and every package the
processes import copied in, nothing local sent to the build; and the checker catches breakage."""

from __future__ import annotations

import ast
import json
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from core.settings import load_settings
from devstack.up import api_command
from tests.support import dockerfile
from tests.support.lockfile import read_lockfile
from tests.support.stack import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = (ROOT / ".dockerignore").read_text()
RUNTIME_PACKAGES = ("api", "core", "db", "tasks", "inference")
FIRST_PARTY = {"api", "core", "db", "tasks", "inference", "devstack", "training", "benchmarks", "tests"}


def test_the_dockerfile_passes_its_checks() -> None:
    assert dockerfile.problems(DOCKERFILE, DOCKERIGNORE) == []


def test_the_image_holds_every_package_its_processes_import() -> None:
    final = dockerfile.stages(DOCKERFILE)[-1]
    copied = {src.rstrip("/") for sources, _ in dockerfile.final_copies(final) for src in sources}
    imported: set[str] = set()
    for package in RUNTIME_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if dockerfile.dockerignore_excludes(DOCKERIGNORE.splitlines(), relative):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module.split(".")[0])
                elif isinstance(node, ast.Import):
                    imported.update(alias.name.split(".")[0] for alias in node.names)
    needed = imported & FIRST_PARTY
    assert needed <= copied, f"imported but not in the image: {needed - copied}"
    assert set(RUNTIME_PACKAGES) <= copied
    for model in (ROOT / "inference" / "models").rglob("*.onnx"):
        assert not dockerfile.dockerignore_excludes(
            DOCKERIGNORE.splitlines(), model.relative_to(ROOT).as_posix()
        )


@pytest.mark.parametrize("target", ["api", "runtime"])
def test_the_command_is_the_api_as_the_dev_stack_runs_it(target: str) -> None:
    image = next(s for s in dockerfile.targets(dockerfile.stages(DOCKERFILE)) if s.name == target)
    cmd = json.loads(next(rest for word, rest in image.instructions if word == "CMD"))
    settings = load_settings({"API_HOST": "0.0.0.0", "API_PORT": "8000"}, dotenv=None)
    assert cmd == ["granian", *api_command(settings, workers=1)[1:]]
    user = next(rest for word, rest in reversed(image.instructions) if word == "USER")
    assert user == "10001:10001"  # the uid the pod securityContext runs as (k8s/base)


def test_the_default_target_is_the_image_of_every_process() -> None:
    all_stages = dockerfile.stages(DOCKERFILE)
    assert [s.name for s in dockerfile.targets(all_stages)] == ["api", "runtime"]
    assert all_stages[-1].name == "runtime"  # what `docker build` builds without --target
    assert dockerfile.lockfiles_behind(all_stages, all_stages[-1]) == ["requirements/runtime.txt"]


def _api_modules() -> dict[str, Path]:
    """Every module of ours the API can import, following imports inside functions too."""
    found: dict[str, Path] = {}
    todo = ["api.app"]
    while todo:
        module = todo.pop()
        base = ROOT.joinpath(*module.split("."))
        path = base / "__init__.py" if (base / "__init__.py").exists() else base.with_suffix(".py")
        if module in found or not path.exists():
            continue
        found[module] = path
        parts = module.split(".")
        todo += [".".join(parts[:n]) for n in range(1, len(parts))]  # its packages' __init__
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names if alias.name.split(".")[0] in FIRST_PARTY]
            elif (
                isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in FIRST_PARTY
            ):
                todo += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return found


def test_the_api_image_holds_what_the_api_imports_and_no_models_or_onnxruntime() -> None:
    all_stages = dockerfile.stages(DOCKERFILE)
    api = next(s for s in all_stages if s.name == "api")
    copied = {src.rstrip("/") for sources, _ in dockerfile.final_copies(api) for src in sources}
    modules = _api_modules()
    assert "api.app" in modules
    assert {m.split(".")[0] for m in modules} == copied == {"api", "core", "db", "tasks"}
    pinned = read_lockfile("api.txt")
    assert "onnxruntime" not in pinned
    third_party = {
        top
        for path in modules.values()
        for node in ast.walk(ast.parse(path.read_text()))
        for top in _third_party_tops(node)
    }
    distributions = packages_distributions()
    missing = {
        m for m in third_party if not {canonicalize_name(d) for d in distributions.get(m, [])} & set(pinned)
    }
    assert missing == set(), f"the API imports these, and requirements/api.txt does not pin them: {missing}"


def _third_party_tops(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [node.module]
    else:
        return []
    tops = [name.split(".")[0] for name in names]
    return [
        t for t in tops if t not in FIRST_PARTY and t not in sys.stdlib_module_names and t != "__future__"
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("USER 10001:10001", "USER root", "runs as root"),
        ("USER 10001:10001", "", "no USER"),
        ("python:3.11.11-slim-bookworm", "python:latest", "untagged or latest"),
        ("python:3.11.11-slim-bookworm", "python:3.11.11-bookworm", "not a slim image"),
        (
            "EXPOSE 8000",
            "EXPOSE 8000\nHEALTHCHECK CMD curl -f http://localhost:8000/health/live",
            "HEALTHCHECK",
        ),
        (
            "RUN python -m compileall -q /app",
            "RUN apt-get update && apt-get install -y gcc",
            "installs packages",
        ),
        ("COPY inference/ /app/inference/", "COPY inference/body.py /app/inference/", "ONNX models"),
        ("pip install --no-cache-dir --require-hashes", "pip install --require-hashes", None),
        ("--require-hashes -r requirements.txt", "fashionistar[otel]", "no lockfile pins"),
        ("--require-hashes -r requirements.txt", "-r requirements.txt", "no lockfile pins"),
    ],
)
def test_the_dockerfile_check_catches_breakage(old: str, new: str, message: str | None) -> None:
    assert old in DOCKERFILE
    broken = DOCKERFILE.replace(old, new)
    if message is None:  # pip's cache: only caught once the environment does not disable it either
        broken = broken.replace("PIP_NO_CACHE_DIR=1", "PIP_NO_COLOR=1")
        message = "pip keeps its cache"
    found = dockerfile.problems(broken, DOCKERIGNORE)
    assert any(message in p for p in found), found


def test_a_single_stage_build_is_caught() -> None:
    header = DOCKERFILE[: DOCKERFILE.index("# --- build")]
    base = DOCKERFILE[DOCKERFILE.index("FROM ${PYTHON_IMAGE} AS base") : DOCKERFILE.index("# --- api")]
    final_stage = DOCKERFILE[DOCKERFILE.index("FROM base AS runtime") :].replace("FROM base AS runtime", "")
    single = header + base + final_stage.replace("COPY --from=build-all /opt/venv /opt/venv", "")
    assert len(dockerfile.stages(single)) == 1
    assert "not a multi-stage build" in dockerfile.problems(single, DOCKERIGNORE)


def test_the_api_target_is_checked() -> None:
    """The API's image must exist, hold no models and be built from requirements/api.txt alone."""
    api_stage = DOCKERFILE[DOCKERFILE.index("# --- api") : DOCKERFILE.index("# --- runtime")]
    assert any(
        "no api target" in p for p in dockerfile.problems(DOCKERFILE.replace(api_stage, ""), DOCKERIGNORE)
    )
    with_models = api_stage.replace(
        "COPY tasks/ /app/tasks/", "COPY tasks/ /app/tasks/\nCOPY inference/ /app/inference/"
    )
    found = dockerfile.problems(DOCKERFILE.replace(api_stage, with_models), DOCKERIGNORE)
    assert any("the api image copies inference/" in p for p in found), found
    full_venv = api_stage.replace("--from=build-api", "--from=build-all")
    found = dockerfile.problems(DOCKERFILE.replace(api_stage, full_venv), DOCKERIGNORE)
    assert any("not built from requirements/api.txt" in p for p in found), found


@pytest.mark.parametrize("entry", [".venv", ".data", ".git", ".pytest_cache", "tests"])
def test_the_dockerignore_check_catches_a_missing_exclusion(entry: str) -> None:
    lines = [line for line in DOCKERIGNORE.splitlines() if line.strip() != entry]
    assert len(lines) < len(DOCKERIGNORE.splitlines())
    assert f".dockerignore does not exclude {entry}" in dockerfile.problems(DOCKERFILE, "\n".join(lines))


def test_the_dockerignore_check_catches_excluded_models() -> None:
    found = dockerfile.problems(DOCKERFILE, DOCKERIGNORE + "\n*.onnx\n**/*.onnx\n")
    assert any("efficientnet_lite0_embed.onnx" in p for p in found), found


def test_dockerignore_matching() -> None:
    patterns = ["**/__pycache__", ".data", "training/build", "docs", "!docs/keep.md"]
    assert dockerfile.dockerignore_excludes(patterns, "api/__pycache__/app.cpython-311.pyc")
    assert dockerfile.dockerignore_excludes(patterns, "__pycache__/x.pyc")
    assert dockerfile.dockerignore_excludes(patterns, ".data/pg/PG_VERSION")
    assert dockerfile.dockerignore_excludes(patterns, "training/build/body_models.py")
    assert not dockerfile.dockerignore_excludes(patterns, "inference/body.py")
    assert not dockerfile.dockerignore_excludes(patterns, "docs/keep.md")
