"""The Kubernetes manifests, checked offline: each overlay rendered (tests/support/kube.py), every
object validated against the Kubernetes schemas, the policies every workload must pass, the
wiring between objects, and the tie between the manifests and the code they deploy. The same
checkers are fed broken manifests to show they catch what they are for."""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from core.settings import Settings, load_settings
from devstack.up import api_command
from tasks.runtime.factory import build_broker
from tasks.runtime.queues import QUEUES, stream_name
from tests.support import kube
from tests.support.stack import ROOT

K8S = ROOT / "k8s"
OVERLAYS = ("dev", "production")
SECRET_TEMPLATE = kube.load_documents(K8S / "secret.template.yaml")
# Secret keys that are not settings of the app: the migrations Job's direct database URL and the
# Redis password KEDA authenticates with.
EXTRA_SECRET_KEYS = {"DATABASE_URL_DIRECT", "REDIS_PASSWORD"}
SETTINGS = {f.name.upper() for f in msgspec.structs.fields(Settings)}

Obj = dict[str, Any]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Obj]]:
    return request.param, kube.render(K8S / "overlays" / request.param)


def production() -> list[Obj]:
    return kube.render(K8S / "overlays" / "production")


def get(objects: list[Obj], kind: str, name: str) -> Obj:
    obj = kube.find(objects, kind, name)
    assert obj is not None, f"{kind}/{name} missing"
    return obj


def container(objects: list[Obj], kind: str, name: str) -> Obj:
    spec = kube.pod_spec(get(objects, kind, name))
    assert spec is not None
    first: Obj = spec["containers"][0]
    return first


def test_every_object_matches_its_schema(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    assert [e for obj in objects for e in kube.schema_errors(obj)] == []


def test_every_workload_passes_the_policies(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    assert kube.pod_spec(get(objects, "Deployment", "fashionistar-api")) is not None
    assert kube.policy_violations(objects) == []


def test_images_are_the_release_image_with_a_version_tag(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    images = {c["image"] for obj in objects for c in kube.containers(obj)}
    app_images = {i for i in images if "pgbouncer" not in i}
    assert len(app_images) == 1, app_images
    assert re.fullmatch(r"[\w.\-/]+/backend:\d+\.\d+\.\d+[\w.\-]*", app_images.pop())


def test_one_worker_per_queue_one_scheduler_and_the_api_runs_the_dev_stack_command(
    rendered: tuple[str, list[Obj]],
) -> None:
    _, objects = rendered
    for queue in QUEUES:
        worker = container(objects, "Deployment", f"fashionistar-worker-{queue}")
        assert worker["command"] == ["python", "-m", "tasks.runtime.worker", "--queues", queue]
    workers = [
        o for o in objects if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "worker"
    ]
    assert {
        o["metadata"]["labels"]["fashionistar.dev/queue"] for o in workers if o["kind"] == "Deployment"
    } == set(QUEUES)
    scheduler = get(objects, "Deployment", "fashionistar-scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
    assert container(objects, "Deployment", "fashionistar-scheduler")["command"][-1] == "--scheduler"
    scaled = {o["spec"]["scaleTargetRef"]["name"] for o in objects if "scaleTargetRef" in o.get("spec", {})}
    assert "fashionistar-scheduler" not in scaled
    # The API's flags are the ones every local stack runs granian with.
    settings = load_settings({"API_HOST": "0.0.0.0", "API_PORT": "8000"}, dotenv=None)
    api = container(objects, "Deployment", "fashionistar-api")
    assert api["command"][1:] == api_command(settings, workers=1)[1:]
    assert api["command"][0] == "granian"


def test_workers_serve_metrics_where_prometheus_is_told_to_scrape(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    config = get(objects, "ConfigMap", "fashionistar-config")["data"]
    port = int(config["WORKER_METRICS_PORT"])
    assert port > 0
    assert config["WORKER_METRICS_HOST"] == "0.0.0.0"  # reachable from outside the pod
    for queue in QUEUES:
        pod = get(objects, "Deployment", f"fashionistar-worker-{queue}")["spec"]["template"]
        assert pod["metadata"]["annotations"] == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }
        worker = container(objects, "Deployment", f"fashionistar-worker-{queue}")
        assert worker["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
        assert "--processes" not in worker["command"]  # one process per pod: one port


def test_api_metrics_are_on_their_own_port_which_the_ingress_never_routes(
    rendered: tuple[str, list[Obj]],
) -> None:
    overlay, objects = rendered
    environment = app_environment(objects)
    settings = load_settings(environment, dotenv=None)
    port = settings.api_metrics_port
    assert port > 0
    assert port != settings.api_port
    assert settings.api_metrics_host == "0.0.0.0"  # reachable by Prometheus from outside the pod
    # Production keeps them off the API port even where the ConfigMap does not say so.
    unset = {k: v for k, v in environment.items() if not k.startswith("API_METRICS_")}
    assert (load_settings(unset, dotenv=None).api_metrics_port > 0) == (overlay == "production")
    pod = get(objects, "Deployment", "fashionistar-api")["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    api = container(objects, "Deployment", "fashionistar-api")
    assert {p["name"]: p["containerPort"] for p in api["ports"]} == {"http": 8000, "metrics": port}
    service = get(objects, "Service", "fashionistar-api")["spec"]["ports"]
    assert {p["name"]: p["targetPort"] for p in service} == {"http": "http", "metrics": "metrics"}
    for ingress in (o for o in objects if o["kind"] == "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["port"] == {"name": "http"}, path
                assert not "/metrics".startswith(path["path"]), path  # /metrics is not routed


def test_api_probes_shutdown_and_spread(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    api = container(objects, "Deployment", "fashionistar-api")
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert api["startupProbe"]["httpGet"]["path"] == "/health/live"
    pre_stop = api["lifecycle"]["preStop"]["exec"]["command"]
    spec = kube.pod_spec(get(objects, "Deployment", "fashionistar-api"))
    assert spec is not None
    assert spec["terminationGracePeriodSeconds"] > int(pre_stop[-1]) + 15
    assert {c["topologyKey"] for c in spec["topologySpreadConstraints"]} >= {"topology.kubernetes.io/zone"}
    hpa = get(objects, "HorizontalPodAutoscaler", "fashionistar-api")
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]
    }
    assert targets == {"cpu": 70, "memory": 80}


def test_workers_scale_on_their_own_stream_or_on_cpu_never_both(rendered: tuple[str, list[Obj]]) -> None:
    overlay, objects = rendered
    group = build_broker(load_settings({}, dotenv=None)).consumer_group_name
    scaled = {o["spec"]["scaleTargetRef"]["name"]: o for o in objects if o["kind"] == "ScaledObject"}
    hpas = {o["spec"]["scaleTargetRef"]["name"] for o in objects if o["kind"] == "HorizontalPodAutoscaler"}
    assert not set(scaled) & hpas
    for queue in QUEUES:
        name = f"fashionistar-worker-{queue}"
        if overlay == "production":
            triggers = scaled[name]["spec"]["triggers"]
            assert {t["metadata"]["stream"] for t in triggers} == {stream_name(queue)}
            assert {t["metadata"]["consumerGroup"] for t in triggers} == {group}
            kinds = {k for t in triggers for k in ("lagCount", "pendingEntriesCount") if k in t["metadata"]}
            assert kinds == {"lagCount", "pendingEntriesCount"}
        else:
            assert name in hpas


def test_scale_targets_and_selectors_find_their_pods(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    pod_labels = [o["spec"]["template"]["metadata"]["labels"] for o in objects if o["kind"] in kube.WORKLOADS]
    for obj in objects:
        ref = obj.get("spec", {}).get("scaleTargetRef")
        if ref:
            assert kube.find(objects, "Deployment", ref["name"]), kube.key(obj)
        if obj["kind"] in ("Service", "PodDisruptionBudget") and "selector" in obj["spec"]:
            wanted = obj["spec"]["selector"].get("matchLabels", obj["spec"]["selector"])
            assert any(wanted.items() <= labels.items() for labels in pod_labels), kube.key(obj)


def test_config_maps_and_secrets_referenced_exist(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    secrets = {s["metadata"]["name"]: set(s["stringData"]) for s in SECRET_TEMPLATE}
    config_maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    for obj in objects:
        spec = kube.pod_spec(obj) or {}
        volumes = spec.get("volumes", [])
        assert {v["configMap"]["name"] for v in volumes if "configMap" in v} <= config_maps
        assert {v["secret"]["secretName"] for v in volumes if "secret" in v} <= set(secrets)
        for c in kube.containers(obj):
            sources = c.get("envFrom", [])
            assert {s["configMapRef"]["name"] for s in sources if "configMapRef" in s} <= config_maps
            assert {s["secretRef"]["name"] for s in sources if "secretRef" in s} <= set(secrets)
            refs = [
                e["valueFrom"]["secretKeyRef"]
                for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            ]
            assert all(r["key"] in secrets[r["name"]] for r in refs), kube.key(obj)
    for auth in (o for o in objects if o["kind"] == "TriggerAuthentication"):
        assert all(t["key"] in secrets[t["name"]] for t in auth["spec"]["secretTargetRef"])


def app_environment(objects: list[Obj], *, filled: bool = True) -> dict[str, str]:
    """The overlay's ConfigMap with the secret template, its placeholders replaced by random
    values as an operator does (``filled=False``: as published)."""
    config = get(objects, "ConfigMap", "fashionistar-config")["data"]
    secret = next(s for s in SECRET_TEMPLATE if s["metadata"]["name"] == "fashionistar-secrets")
    values = secret["stringData"]
    if filled:
        values = {k: v.replace("REPLACE", secrets.token_hex(32)) for k, v in values.items()}
    return {**config, **values}


def test_config_and_secret_template_are_settings_the_app_accepts(rendered: tuple[str, list[Obj]]) -> None:
    overlay, objects = rendered
    env = app_environment(objects)
    assert set(env) - SETTINGS == EXTRA_SECRET_KEYS
    settings = load_settings(env, dotenv=None)
    assert settings.is_production == (overlay == "production")
    assert settings.db_pgbouncer
    assert "@fashionistar-pgbouncer:" in (settings.database_url or "")
    assert "@fashionistar-postgres:" in env["DATABASE_URL_DIRECT"]
    assert settings.media_backend == "s3"
    assert settings.heartbeat_file is not None
    # The migrations Job goes around PgBouncer.
    job = container(objects, "Job", "fashionistar-migrate")
    assert {e["name"]: e for e in job["env"]}["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == (
        "DATABASE_URL_DIRECT"
    )
    assert job["command"][:3] == ["alchemy", "--config", "db.config.alchemy"]


def test_the_secret_template_as_published_is_refused(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    with pytest.raises(ValueError, match="published in the repository"):
        load_settings(app_environment(objects, filled=False), dotenv=None)


def test_production_config_without_a_required_secret_is_refused() -> None:
    env = app_environment(production())
    del env["PAYSTACK_SECRET_KEY"]
    with pytest.raises(ValueError, match="PAYSTACK_SECRET_KEY"):
        load_settings(env, dotenv=None)


def test_no_secret_is_committed_in_a_rendered_overlay(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    assert not [kube.key(o) for o in objects if o["kind"] == "Secret"]
    for kustomization in K8S.rglob("kustomization.yaml"):
        resources = kube.load_documents(kustomization)[0].get("resources", [])
        assert not [r for r in resources if "secret" in r], kustomization
    for secret in SECRET_TEMPLATE:
        for value in secret["stringData"].values():
            assert "REPLACE" in value


def test_network_policies_deny_by_default_and_allow_only_the_listed_paths(
    rendered: tuple[str, list[Obj]],
) -> None:
    _, objects = rendered
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    deny = policies["fashionistar-default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    components = {
        o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        for o in objects
        if o["kind"] in kube.WORKLOADS
    }
    selected = {
        p["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component") for p in policies.values()
    }
    assert components <= selected  # every kind of pod has its own rules
    admitted = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]: p["ingress"]
        for p in policies.values()
        if p.get("ingress")
    }
    assert set(admitted) == {"api", "pgbouncer", "worker"}
    assert [f["namespaceSelector"]["matchLabels"] for f in admitted["api"][0]["from"]] == [
        {"kubernetes.io/metadata.name": "ingress-nginx"}
    ]
    # Prometheus scrapes the API's /metrics and the workers' metrics port, and nothing else.
    monitoring = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    # The API's metrics have their own port; the public port is admitted from the ingress alone.
    api_metrics = int(get(objects, "ConfigMap", "fashionistar-config")["data"]["API_METRICS_PORT"])
    assert admitted["api"] == [
        admitted["api"][0] | {"ports": [{"protocol": "TCP", "port": 8000}]},
        {"from": monitoring, "ports": [{"protocol": "TCP", "port": api_metrics}]},
    ]
    assert admitted["worker"] == [{"from": monitoring, "ports": [{"protocol": "TCP", "port": 9100}]}]
    clients = {
        f["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for f in admitted["pgbouncer"][0]["from"]
    }
    assert clients == {"api", "worker"}


# --- the checkers catch what they are for -------------------------------------------------


def _api(objects: list[Obj]) -> Obj:
    return container(objects, "Deployment", "fashionistar-api")


BREAKAGES: dict[str, tuple[Callable[[list[Obj]], None], str]] = {
    "no memory limit": (lambda o: _api(o)["resources"]["limits"].pop("memory"), "no memory limit"),
    "no cpu request": (
        lambda o: container(o, "Deployment", "fashionistar-worker-inference")["resources"]["requests"].pop(
            "cpu"
        ),
        "no cpu request",
    ),
    "no readiness probe": (lambda o: _api(o).pop("readinessProbe"), "no readinessProbe"),
    "no liveness probe": (
        lambda o: container(o, "Deployment", "fashionistar-scheduler").pop("livenessProbe"),
        "no livenessProbe",
    ),
    "runs as root": (
        lambda o: get(o, "Deployment", "fashionistar-worker-emails")["spec"]["template"]["spec"][
            "securityContext"
        ].update(runAsNonRoot=False),
        "may run as root",
    ),
    "uid 0": (lambda o: _api(o)["securityContext"].update(runAsUser=0), "may run as root"),
    "writable root filesystem": (
        lambda o: container(o, "Job", "fashionistar-migrate")["securityContext"].pop(
            "readOnlyRootFilesystem"
        ),
        "root filesystem is writable",
    ),
    "capabilities kept": (
        lambda o: _api(o)["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
        "capabilities not dropped",
    ),
    "privilege escalation": (
        lambda o: _api(o)["securityContext"].update(allowPrivilegeEscalation=True),
        "privilege escalation allowed",
    ),
    "latest tag": (lambda o: _api(o).update(image="registry.example/backend:latest"), "untagged or latest"),
    "untagged image": (lambda o: _api(o).update(image="registry.example:5000/backend"), "untagged or latest"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_the_policy_check_catches_a_broken_manifest(breakage: str) -> None:
    objects = production()
    assert kube.policy_violations(objects) == []
    breaks, message = BREAKAGES[breakage]
    broken = copy.deepcopy(objects)
    breaks(broken)
    assert [v for v in kube.policy_violations(broken) if message in v], kube.policy_violations(broken)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("spec", "replicas"), "two", "is not of type 'integer'"),
        (
            ("spec", "template", "spec", "containers", 0, "readinesProbe"),
            {},
            "'readinesProbe' was unexpected",
        ),
        (("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), "http", "not of type"),
    ],
)
def test_the_schema_check_catches_a_broken_manifest(path: tuple[Any, ...], value: Any, message: str) -> None:
    deployment = copy.deepcopy(get(production(), "Deployment", "fashionistar-api"))
    assert kube.schema_errors(deployment) == []
    node: Any = deployment
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    errors = kube.schema_errors(deployment)
    assert errors, "not caught"
    assert any(message in e for e in errors), errors


def test_the_schema_check_catches_a_broken_scaled_object() -> None:
    scaled = copy.deepcopy(get(production(), "ScaledObject", "fashionistar-worker-inference"))
    scaled["spec"]["triggers"][0]["metadata"]["lagcount"] = "5"  # a typo KEDA would ignore silently
    assert any("lagcount" in e for e in kube.schema_errors(scaled))
    scaled = copy.deepcopy(get(production(), "ScaledObject", "fashionistar-worker-inference"))
    scaled["spec"]["maxReplicaCount"] = "many"
    assert kube.schema_errors(scaled)


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\ncommonLabels: {team: x}\n")
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    with pytest.raises(kube.KustomizeError, match="commonLabels"):
        kube.render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\npatches: [{path: p.yaml}]\n")
    (tmp_path / "p.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {x: y}\n")
    with pytest.raises(kube.KustomizeError, match="ConfigMap/b"):
        kube.render(tmp_path)


def test_strategic_merge_merges_containers_by_name_and_replaces_other_lists() -> None:
    base = {
        "spec": {"containers": [{"name": "a", "image": "x:1", "args": ["1"]}, {"name": "b"}], "x": [1, 2]}
    }
    patch = {"spec": {"containers": [{"name": "a", "args": ["2"]}], "x": [3], "gone": None}}
    assert kube.strategic_merge(base, patch) == {
        "spec": {"containers": [{"name": "a", "image": "x:1", "args": ["2"]}, {"name": "b"}], "x": [3]}
    }
