"""tests/support/kube.py's small kustomize against the real one: every kustomization in k8s/ renders
to the same objects with both, so the offline checks of tests/test_deployment.py look at exactly
what `kubectl apply -k` would apply. Runs where the standalone `kustomize` or a `kubectl` with
kustomize v4 or newer built in is on PATH, and skips, saying why, elsewhere."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import kube
from tests.support.stack import ROOT

K8S = ROOT / "k8s"
KUSTOMIZATIONS = sorted(p.parent.relative_to(K8S).as_posix() for p in K8S.rglob("kustomization.yaml"))
# `patches: [{path: ...}]` needs kustomize v3.1+; kubectl bundled v2.0.3 up to 1.20 and v4 from 1.21.
OLDEST_KUSTOMIZE = 4


def _major(version: str) -> int | None:
    found = re.search(r"v?(\d+)\.\d+", version)
    return int(found[1]) if found else None


def kustomize_command() -> tuple[list[str] | None, str]:
    """The command that builds a kustomization, or None and why there is none."""
    if standalone := shutil.which("kustomize"):
        done = subprocess.run(
            [standalone, "version"], capture_output=True, text=True, timeout=30, check=False
        )
        major = _major(done.stdout)
        if major is not None and major >= OLDEST_KUSTOMIZE:
            return [standalone, "build"], ""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None, "neither kustomize nor kubectl is on PATH"
    done = subprocess.run(
        [kubectl, "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    try:
        bundled = str(json.loads(done.stdout).get("kustomizeVersion", ""))
    except json.JSONDecodeError:
        bundled = ""
    major = _major(bundled)
    if major is None or major < OLDEST_KUSTOMIZE:
        return (
            None,
            f"kubectl on PATH bundles kustomize {bundled or '(unknown)'}; v{OLDEST_KUSTOMIZE}+ is needed",
        )
    return [kubectl, "kustomize"], ""


def rendered_by(command: list[str], directory: Path) -> dict[str, Any]:
    done = subprocess.run([*command, str(directory)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return {kube.key(obj): obj for obj in yaml.safe_load_all(done.stdout) if obj}


@pytest.fixture(scope="module")
def kustomize() -> list[str]:
    command, why_not = kustomize_command()
    if command is None:
        pytest.skip(f"no real kustomize to compare with: {why_not}")
    return command


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_offline_renderer_matches_kustomize(kustomization: str, kustomize: list[str]) -> None:
    directory = K8S / kustomization
    ours = {kube.key(obj): obj for obj in kube.render(directory)}
    theirs = rendered_by(kustomize, directory)
    assert sorted(ours) == sorted(theirs)
    for key, obj in ours.items():
        assert obj == theirs[key], f"{kustomization}: {key} differs"


def test_every_overlay_is_compared() -> None:
    assert {"base", "overlays/dev", "overlays/production"} <= set(KUSTOMIZATIONS)


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: shop:1.0
          args: [--a, --b]
          env: [{name: A, value: "1"}, {name: B, value: "2"}]
          volumeMounts: [{name: tmp, mountPath: /tmp}]
          resources: {limits: {cpu: "1"}}
      volumes: [{name: tmp, emptyDir: {}}]
"""
PATCH = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web
          args: [--c]
          env: [{name: B, value: "3"}, {name: C, value: "4"}]
          volumeMounts: [{name: cache, mountPath: /cache}]
          resources: {limits: null}
        - name: sidecar
          image: proxy:2.1
      volumes: [{name: cache, emptyDir: {}}]
"""


def test_merging_lists_by_key_and_deleting_with_null_match_kustomize(
    tmp_path: Path, kustomize: list[str]
) -> None:
    """The strategic-merge rules kube.render implements, on a patch that uses each of them."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "web.yaml").write_text(DEPLOYMENT)
    (base / "kustomization.yaml").write_text("resources: [web.yaml]\n")
    (tmp_path / "patch.yaml").write_text(PATCH)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [base]\nnamespace: shop\npatches: [{path: patch.yaml}]\n"
        "images: [{name: shop, newName: registry.example/shop, newTag: '1.1'}]\n"
    )
    ours = {kube.key(obj): obj for obj in kube.render(tmp_path)}
    assert ours == rendered_by(kustomize, tmp_path)
