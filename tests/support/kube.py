"""Offline checks of the Kubernetes manifests in ``k8s/``: a small kustomize, schemas, policies.

``render`` implements the part of kustomize the overlays use and refuses anything else, so a
manifest that relies on a feature it does not know fails here instead of rendering wrongly:
``resources`` (files, or directories with a ``kustomization.yaml``), ``namespace``, ``images``
(``newName``/``newTag``) and ``patches`` with ``path`` (strategic-merge patches found by kind and
name; lists of containers, volumes and env entries merge by ``name``, volume mounts by
``mountPath``, container ports by ``containerPort``, the patch's entries first as kustomize orders
them; other lists are replaced, ``null`` deletes). tests/test_kustomize.py compares it with the
real kustomize where one is installed.

``schema_errors`` validates built-in kinds against the Kubernetes OpenAPI schemas shipped by the
``kubernetes-validate`` package (strict: unknown fields are errors) and KEDA's kinds against
``KEDA_SCHEMAS``, a minimal schema written here from KEDA's documentation (KEDA publishes its
schemas only as CRDs, which no maintained PyPI package ships).

``policy_violations`` is the checklist every workload must pass.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

Obj = dict[str, Any]

KUSTOMIZATION_KEYS = frozenset({"apiVersion", "kind", "resources", "namespace", "images", "patches"})
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"})
WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"})
LONG_RUNNING = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
# The oldest Kubernetes minor the manifests target, and the newest the package knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


class KustomizeError(ValueError):
    pass


def load_documents(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(directory: Path) -> list[Obj]:
    """The objects ``kustomize build directory`` would print (for the features listed above)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KUSTOMIZATION_KEYS
    if unknown:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    objects: list[Obj] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        objects.extend(render(target) if target.is_dir() else load_documents(target))
    for patch_entry in kustomization.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise KustomizeError(f"{directory}: only file patches are supported, got {patch_entry}")
        for patch in load_documents(directory / patch_entry["path"]):
            target_obj = find(objects, patch["kind"], patch["metadata"]["name"])
            if target_obj is None:
                raise KustomizeError(f"{directory}: patch target {key(patch)} is not among the resources")
            merged = strategic_merge(target_obj, patch)
            target_obj.clear()
            target_obj.update(merged)
    for image in kustomization.get("images", []):
        set_image(objects, image)
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    names = [key(o) for o in objects]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise KustomizeError(f"{directory}: duplicate objects {sorted(duplicates)}")
    return objects


def key(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def find(objects: Iterable[Obj], kind: str, name: str) -> Obj | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for name, value in patch.items():
            if value is None:
                merged.pop(name, None)
            elif name in merged:
                merged[name] = strategic_merge(merged[name], value, name)
            else:
                merged[name] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        # kustomize's order: the patch's entries first (merged into their base entry), in the
        # patch's order, then the base entries the patch does not name. Order matters: an env
        # entry may refer to earlier ones, and the first container is the default one.
        merge_key = MERGE_KEYS[field]
        by_key = {b.get(merge_key): b for b in base}
        named = {item[merge_key] for item in patch}
        merged_list = [
            strategic_merge(by_key[item[merge_key]], item, field)
            if item[merge_key] in by_key
            else copy.deepcopy(item)
            for item in patch
        ]
        return merged_list + [copy.deepcopy(b) for b in base if b.get(merge_key) not in named]
    return copy.deepcopy(patch)


def pod_spec(obj: Obj) -> Obj | None:
    if obj["kind"] not in WORKLOADS:
        return None
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    result: Obj = spec["template"]["spec"]
    return result


def containers(obj: Obj) -> Iterator[Obj]:
    spec = pod_spec(obj)
    if spec is not None:
        yield from spec.get("initContainers", [])
        yield from spec.get("containers", [])


def set_image(objects: list[Obj], image: Obj) -> None:
    for obj in objects:
        for container in containers(obj):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                new_name = image.get("newName", name)
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


# --- schemas ------------------------------------------------------------------------------

_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": _STRINGS},
    "additionalProperties": False,
}
KEDA_SCHEMAS: dict[str, Obj] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "kind": {"type": "string"},
                            "apiVersion": {"type": "string"},
                        },
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"type": "string"},
                                "name": {"type": "string"},
                                "metadata": _STRINGS,
                                "authenticationRef": {
                                    "type": "object",
                                    "required": ["name"],
                                    "additionalProperties": False,
                                    "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
            },
        },
        "additionalProperties": False,
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "TriggerAuthentication"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {
                                "parameter": {"type": "string"},
                                "name": {"type": "string"},
                                "key": {"type": "string"},
                            },
                        },
                    }
                },
            },
        },
        "additionalProperties": False,
    },
}
# What KEDA's redis-streams scaler reads (keda.sh/docs/scalers/redis-streams).
REDIS_STREAMS_METADATA = frozenset(
    {"address", "stream", "consumerGroup", "pendingEntriesCount", "lagCount", "activationLagCount",
     "streamLength", "databaseIndex", "enableTLS"}
)  # fmt: skip


def schema_errors(obj: Obj) -> list[str]:
    """Why ``obj`` does not validate (empty when it does)."""
    if obj.get("apiVersion", "").startswith("keda.sh/"):
        schema = KEDA_SCHEMAS.get(obj.get("kind", ""))
        if schema is None:
            return [f"{obj.get('kind')}: no schema"]
        errors = [
            f"{key(obj)}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(obj)
        ]
        for trigger in obj.get("spec", {}).get("triggers", []) if obj["kind"] == "ScaledObject" else []:
            unknown = set(trigger.get("metadata", {})) - REDIS_STREAMS_METADATA
            if trigger.get("type") != "redis-streams" or unknown:
                errors.append(f"{key(obj)}: trigger {trigger.get('type')} with unknown {sorted(unknown)}")
        return errors
    errors = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{key(obj)} (Kubernetes {version}): {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{key(obj)}: {exc.message}")
    return errors


# --- policies -----------------------------------------------------------------------------


def _image_ok(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def policy_violations(objects: list[Obj]) -> list[str]:
    """Every broken rule, as ``"<Kind>/<name> <container>: <rule>"``."""
    found: list[str] = []
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        for container in spec.get("initContainers", []):
            found += _container_violations(obj, spec, container, long_running=False)
        for container in spec.get("containers", []):
            found += _container_violations(obj, spec, container, long_running=obj["kind"] in LONG_RUNNING)
    return found


def _container_violations(obj: Obj, spec: Obj, container: Obj, *, long_running: bool) -> list[str]:
    where = f"{key(obj)} {container['name']}"
    found = []
    security = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        found += [
            f"{where}: no {r} {kind[:-1]}" for r in ("cpu", "memory") if r not in resources.get(kind, {})
        ]
    if long_running:
        found += [f"{where}: no {p}" for p in ("readinessProbe", "livenessProbe") if p not in container]
    if security.get("runAsNonRoot") is not True or security.get("runAsUser") == 0:
        found.append(f"{where}: may run as root")
    if security.get("readOnlyRootFilesystem") is not True:
        found.append(f"{where}: root filesystem is writable")
    if security.get("allowPrivilegeEscalation") is not False:
        found.append(f"{where}: privilege escalation allowed")
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        found.append(f"{where}: capabilities not dropped (drop: [ALL])")
    if not _image_ok(container.get("image", "")):
        found.append(f"{where}: image {container.get('image')!r} is untagged or latest")
    return found
