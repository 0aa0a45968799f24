"""The Helm chart (helm/synthetic-exporter), rendered by a real helm and validated offline.

helm comes from scripts/install-helm.sh (a binary shipped in a PyPI wheel). Every rendering
(defaults, each ci/*-values.yaml, both helm/examples) is linted, validated against the
Kubernetes OpenAPI schemas (kubernetes-validate, strict) and, for the Prometheus Operator kinds,
against the operator's models (cloudcoil-models-prometheus-operator); then the objects are
checked for what the chart promises. No cluster is involved: nothing here applies a manifest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.prometheus_operator import v1 as monitoring

from synthetic_exporter.core.settings import (
    RESERVED_LABELS,
    Settings,
    TargetSettings,
    load_settings,
)

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "synthetic-exporter"
INSTALL_HELM = ROOT / "scripts" / "install-helm.sh"
ALERTS = ROOT / "alerts" / "synthetic-exporter.rules.yml"
DASHBOARDS = ROOT / "grafana" / "dashboards"
CHART_ALERTS = CHART / "files" / "synthetic-exporter.rules.yml"
CHART_DASHBOARDS = CHART / "files" / "dashboards"
CI_VALUES = sorted(CHART.glob("ci/*-values.yaml"))
EXAMPLES = sorted((ROOT / "helm" / "examples").glob("*-values.yaml"))
KUBE_VERSION = "1.30.0"
RELEASE = "synthetic-exporter-staging"
NAMESPACE = "monitoring"
PORT = 9479
UID = 65532
STATE_DIR = "/var/lib/synthetic-exporter"
CRD_MODELS: dict[str, Any] = {
    "ServiceMonitor": monitoring.ServiceMonitor,
    "PrometheusRule": monitoring.PrometheusRule,
}
# Settings the chart sets itself, or that come from the existing Secret, not from `config`.
CHART_MANAGED_SETTINGS = {"checks_path", "state_dir", "listen", "shard", "secrets", "admin_token"}

Manifest = dict[str, Any]

# The first test may download helm (scripts/install-helm.sh, ~35 MB from PyPI).
pytestmark = pytest.mark.timeout(300)

# Each case: an id and the values files rendered together (none: the chart's defaults).
CASES: list[tuple[str, tuple[Path, ...]]] = [
    ("defaults", ()),
    *[(path.name, (path,)) for path in CI_VALUES],
    *[(f"examples/{path.name}", (path,)) for path in EXAMPLES],
]
CASE_IDS = [case_id for case_id, _ in CASES]


class Helm:
    """The helm binary, with its config, cache and data kept out of $HOME."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary = binary
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run helm; never raises on a non-zero exit."""
        return subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )

    def template(self, *args: str) -> list[Manifest]:
        """Render the chart; return its objects (empty documents dropped)."""
        result = self.try_template(*args)
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def try_template(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `helm template` for the release in the namespace, at KUBE_VERSION."""
        return self.run(
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            *args,
        )


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm from scripts/install-helm.sh; the tests fail (never skip) without it."""
    result = subprocess.run(
        ["bash", str(INSTALL_HELM)], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/install-helm.sh failed:\n{result.stderr}", pytrace=False)
    binary = Path(result.stdout.strip().splitlines()[-1])
    assert binary.is_file(), result.stdout
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))


def values_args(files: tuple[Path, ...]) -> list[str]:
    """`-f FILE` for each values file."""
    return [arg for path in files for arg in ("-f", str(path))]


@pytest.fixture(scope="session")
def render(helm: Helm) -> Callable[..., list[Manifest]]:
    """Render the chart with values files and --set options (cached per arguments)."""

    @cache
    def cached(*args: str) -> str:
        return json.dumps(helm.template(*args))

    def render_(*args: str) -> list[Manifest]:
        result: list[Manifest] = json.loads(cached(*args))
        return result

    return render_


def case(render: Callable[..., list[Manifest]], files: tuple[Path, ...]) -> list[Manifest]:
    """Render one case."""
    return render(*values_args(files))


def only(objects: list[Manifest], kind: str) -> Manifest:
    """The single object of a kind."""
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def kinds(objects: list[Manifest]) -> list[str]:
    """The kinds of the objects, sorted."""
    return sorted(o["kind"] for o in objects)


def workload(objects: list[Manifest]) -> Manifest:
    """The Deployment or the StatefulSet."""
    found = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    assert len(found) == 1, kinds(objects)
    return found[0]


def container(objects: list[Manifest]) -> Manifest:
    """The agent's container."""
    containers = workload(objects)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["synthetic-exporter"]
    result: Manifest = containers[0]
    return result


def env_of(objects: list[Manifest]) -> dict[str, str]:
    """The container's SYNTHETIC_* environment: the env ConfigMap, then literal env values."""
    configmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container(objects).get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for var in container(objects).get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
    return env


def checksum(objects: list[Manifest]) -> str:
    """The pod template's checksum/config annotation."""
    annotations = workload(objects)["spec"]["template"]["metadata"]["annotations"]
    value: str = annotations["checksum/config"]
    assert re.fullmatch(r"[0-9a-f]{64}", value)
    return value


# Lint and schema validation


@pytest.mark.slow
@pytest.mark.parametrize(("case_id", "files"), CASES, ids=CASE_IDS)
def test_helm_lint_strict(helm: Helm, case_id: str, files: tuple[Path, ...]) -> None:
    result = helm.run(
        "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *values_args(files)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("case_id", "files"), CASES, ids=CASE_IDS)
def test_manifests_validate_offline(
    render: Callable[..., list[Manifest]], case_id: str, files: tuple[Path, ...]
) -> None:
    """Built-in kinds against Kubernetes' schemas (strict); CRDs against the operator's."""
    objects = case(render, files)
    assert objects
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        model = CRD_MODELS.get(obj["kind"])
        if model is None:
            try:
                kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{case_id}: {name}: {path}: {exc.message}", pytrace=False)
        else:
            parsed = model.model_validate(obj)
            # The models ignore unknown fields: a round trip that loses one is an error.
            dumped = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
            assert dumped == obj, f"{case_id}: {name} has fields the CRD does not know"
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE, name


def test_every_feature_has_a_ci_values_file() -> None:
    names = {path.name for path in CI_VALUES}
    assert {
        "browser-values.yaml",
        "checks-configmap-values.yaml",
        "dashboards-values.yaml",
        "existing-secret-values.yaml",
        "location-values.yaml",
        "networkpolicy-values.yaml",
        "persistence-values.yaml",
        "servicemonitor-prometheusrule-values.yaml",
        "sharding-values.yaml",
    } <= names
    assert [p.name for p in EXAMPLES] == ["production-values.yaml", "staging-values.yaml"]


# Defaults


@pytest.mark.slow
def test_defaults_render_a_secure_single_replica_deployment(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = render()
    assert kinds(objects) == ["ConfigMap", "Deployment", "Service", "ServiceAccount"]
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert container(objects)["image"] == "synthetic-exporter:0.1.0"
    env = env_of(objects)
    assert env["SYNTHETIC_CHECKS_PATH"] == "/app/checks"
    assert env["SYNTHETIC_STATE_DIR"] == STATE_DIR
    assert env["SYNTHETIC_LISTEN"] == f"0.0.0.0:{PORT}"
    assert "SYNTHETIC_SHARD" not in env


@pytest.mark.slow
@pytest.mark.parametrize(("case_id", "files"), CASES, ids=CASE_IDS)
def test_probes_use_healthy_and_ready_never_healthz(
    render: Callable[..., list[Manifest]], case_id: str, files: tuple[Path, ...]
) -> None:
    agent = container(case(render, files))
    assert agent["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}
    assert agent["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
    assert "/healthz" not in json.dumps(agent)
    assert agent["ports"] == [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]


@pytest.mark.slow
@pytest.mark.parametrize(("case_id", "files"), CASES, ids=CASE_IDS)
def test_restricted_security_defaults(
    render: Callable[..., list[Manifest]], case_id: str, files: tuple[Path, ...]
) -> None:
    objects = case(render, files)
    pod = workload(objects)["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container(objects)["securityContext"] == {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["automountServiceAccountToken"] is False
    account = only(objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in container(objects)["volumeMounts"]}
    assert mounts["state"] == STATE_DIR
    assert mounts["tmp"] == "/tmp"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"]


@pytest.mark.slow
@pytest.mark.parametrize(("case_id", "files"), CASES, ids=CASE_IDS)
def test_service_exposes_the_http_port(
    render: Callable[..., list[Manifest]], case_id: str, files: tuple[Path, ...]
) -> None:
    objects = case(render, files)
    service = only(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}
    ]
    pod_labels = workload(objects)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert workload(objects)["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


# Settings: the chart's environment is what the agent reads


@pytest.mark.slow
@pytest.mark.parametrize(("case_id", "files"), CASES, ids=CASE_IDS)
def test_agent_accepts_the_rendered_environment(
    render: Callable[..., list[Manifest]],
    monkeypatch: pytest.MonkeyPatch,
    case_id: str,
    files: tuple[Path, ...],
) -> None:
    """Every SYNTHETIC_* variable the chart renders is a valid setting of the agent."""
    env = env_of(case(render, files))
    for name in list(os.environ):
        if name.startswith("SYNTHETIC_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name == "SYNTHETIC_SHARD":
            value = value.replace("$(POD_INDEX)", "0")
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert str(settings.checks_path) == "/app/checks"
    assert str(settings.state_dir) == STATE_DIR


@pytest.mark.slow
def test_config_becomes_synthetic_variables(
    render: Callable[..., list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    production = ROOT / "helm" / "examples" / "production-values.yaml"
    env = env_of(case(render, (production,)))
    assert env["SYNTHETIC_ENVIRONMENT"] == "production"
    assert env["SYNTHETIC_INTERVAL"] == "2m"
    assert env["SYNTHETIC_CONCURRENCY"] == "5"
    assert env["SYNTHETIC_TARGETS__DEFAULT__BASE_URL"] == "https://api.example.com"
    assert env["SYNTHETIC_TARGETS__CDN__FRESH_CONNECTIONS"] == "true"
    assert json.loads(env["SYNTHETIC_TARGETS__CDN__HEADERS"]) == {"X-Synthetic-Check": "1"}
    assert env["SYNTHETIC_LABELS__LOCATION"] == "eu-west-1"
    for name in list(os.environ):
        if name.startswith("SYNTHETIC_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("$(POD_INDEX)", "1"))
    settings = load_settings()
    assert settings.interval == 120
    assert settings.labels == {"location": "eu-west-1"}
    assert settings.targets["cdn"].http2 is True
    assert settings.targets["cdn"].timeout == 10
    assert settings.targets["cdn"].ip_protocol == "ip6"
    assert settings.targets["cdn"].max_body_bytes == 50 * 1024 * 1024


@pytest.mark.slow
def test_target_authentication_keys_become_target_variables(
    render: Callable[..., list[Manifest]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """camelCase keys with a digit (oauth2TokenUrl) become the agent's OAUTH2_* fields."""
    values = tmp_path / "auth-values.yaml"
    billing = {
        "baseUrl": "https://billing.example.com",
        "oauth2TokenUrl": "https://auth.example.com/oauth/token",
        "oauth2ClientId": "synthetic-probe",
        "oauth2Secret": "billing_client",
        "oauth2Scopes": ["invoices:read", "write"],
        "oauth2Params": {"audience": "https://billing.example.com"},
    }
    basic = {"baseUrl": "https://legacy.example.com", "basicAuthSecret": "legacy_login"}
    values.write_text(
        yaml.safe_dump({"config": {"targets": {"billing": billing, "legacy": basic}}})
    )
    env = env_of(render("-f", str(values)))
    assert env["SYNTHETIC_TARGETS__BILLING__OAUTH2_TOKEN_URL"] == billing["oauth2TokenUrl"]
    assert env["SYNTHETIC_TARGETS__LEGACY__BASIC_AUTH_SECRET"] == "legacy_login"
    for name in list(os.environ):
        if name.startswith("SYNTHETIC_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("$(POD_INDEX)", "0"))
    monkeypatch.setenv("SYNTHETIC_SECRETS__BILLING_CLIENT", "cl1ent-s3cret")
    monkeypatch.setenv("SYNTHETIC_SECRETS__LEGACY_LOGIN", "synth:pa55word")
    targets = load_settings().targets
    assert targets["billing"].oauth2_client_id == "synthetic-probe"
    assert targets["billing"].oauth2_secret == "billing_client"
    assert targets["billing"].oauth2_scopes == ["invoices:read", "write"]
    assert targets["billing"].oauth2_params == {"audience": "https://billing.example.com"}
    assert targets["legacy"].basic_auth_secret == "legacy_login"


@pytest.mark.slow
def test_location_mode_labels_every_metric(render: Callable[..., list[Manifest]]) -> None:
    objects = case(render, (CHART / "ci" / "location-values.yaml",))
    assert env_of(objects)["SYNTHETIC_LABELS__LOCATION"] == "eu-west-1"


def snake_case(name: str) -> str:
    """camelCase -> snake_case, as the chart's `snakecase` does for these keys."""
    return re.sub(r"([A-Z])", r"_\1", name).lower()


def test_config_keys_cover_the_agent_settings() -> None:
    """values.schema.json's `config` keys are the agent's settings the chart does not manage."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    config = schema["properties"]["config"]["properties"]
    settings = set(Settings.model_fields) - CHART_MANAGED_SETTINGS
    assert {snake_case(key) for key in config} == settings, (
        "add new settings to values.yaml and values.schema.json `config`"
    )
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["config"]) == set(config)
    target_keys = config["targets"]["additionalProperties"]["properties"]
    assert {snake_case(key) for key in target_keys} == set(TargetSettings.model_fields)
    reserved = config["labels"]["propertyNames"]["not"]["enum"]
    assert set(reserved) == RESERVED_LABELS


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicas=2"], "without sharding.enabled"),
        (["--set", "config.adminToken=x"], "adminToken"),
        (["--set", "config.labels.shard=x"], "shard"),
        (["--set", "config.targets.API.baseUrl=https://x.example.com"], "API"),
        (["--set", "config.intervall=5m"], "intervall"),
        (["--set", "persistence.enabled=true"], "existingClaim"),
        (
            ["--set", "sharding.enabled=true", "--set", "persistence.existingClaim=x"],
            "cannot be shared by shards",
        ),
        (["--set", "checks.configMap.enabled=true"], "checks.configMap.files"),
    ],
)
def test_inconsistent_values_fail_the_render(helm: Helm, args: list[str], message: str) -> None:
    result = helm.try_template(*args)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.slow
def test_sharding_needs_kubernetes_1_28(helm: Helm) -> None:
    result = helm.run(
        "template",
        RELEASE,
        str(CHART),
        "--kube-version",
        "1.27.0",
        "-f",
        str(CHART / "ci" / "sharding-values.yaml"),
    )
    assert result.returncode != 0
    assert "Kubernetes >= 1.28" in result.stderr


# Sharding, persistence, secrets, checks


@pytest.mark.slow
def test_sharding_renders_a_statefulset_with_one_shard_per_pod(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = case(render, (CHART / "ci" / "sharding-values.yaml",))
    assert "Deployment" not in kinds(objects)
    statefulset = only(objects, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    env = container(objects)["env"]
    names = [var["name"] for var in env]
    assert names.index("POD_INDEX") < names.index("SYNTHETIC_SHARD"), "$(VAR) needs order"
    pod_index = next(var for var in env if var["name"] == "POD_INDEX")
    assert pod_index["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
    }
    shard = next(var for var in env if var["name"] == "SYNTHETIC_SHARD")
    assert shard["value"] == "$(POD_INDEX)/3"
    # Each shard keeps its own ledger on its own claim.
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    volumes = [v["name"] for v in statefulset["spec"]["template"]["spec"]["volumes"]]
    assert "state" not in volumes


@pytest.mark.slow
def test_sharding_without_persistence_uses_an_empty_dir(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = render("--set", "sharding.enabled=true", "--set", "replicas=2")
    statefulset = only(objects, "StatefulSet")
    assert "volumeClaimTemplates" not in statefulset["spec"]
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["state"]
    assert env_of(objects)["SYNTHETIC_SHARD"] == "$(POD_INDEX)/2"


@pytest.mark.slow
def test_persistence_uses_the_existing_claim_and_recreate(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = case(render, (CHART / "ci" / "persistence-values.yaml",))
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"] == {
        "name": "state",
        "persistentVolumeClaim": {"claimName": "synthetic-exporter-state"},
    }


@pytest.mark.slow
def test_browser_runs_the_chromium_variant_with_its_resources_and_shm(
    render: Callable[..., list[Manifest]],
) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["browser"]
    objects = case(render, (CHART / "ci" / "browser-values.yaml",))
    agent = container(objects)
    assert agent["image"] == "synthetic-exporter:0.1.0-browser"
    assert agent["resources"] == values["resources"]
    assert agent["resources"]["limits"]["memory"] == "2Gi"
    mounts = {m["name"]: m["mountPath"] for m in agent["volumeMounts"]}
    assert mounts["dshm"] == "/dev/shm"
    volumes = {v["name"]: v for v in workload(objects)["spec"]["template"]["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Mi"}
    assert volumes["tmp"]["emptyDir"] == {"sizeLimit": "256Mi"}
    env = env_of(objects)
    assert json.loads(env["SYNTHETIC_BROWSER_ARGS"]) == ["--no-sandbox"]
    assert env["XDG_CACHE_HOME"].startswith("/tmp/")
    assert env["XDG_CONFIG_HOME"].startswith("/tmp/")
    assert agent["securityContext"]["readOnlyRootFilesystem"] is True
    own = render("--set", "browser.enabled=true", "--set", "config.browserArgs={--lang=en-GB}")
    assert json.loads(env_of(own)["SYNTHETIC_BROWSER_ARGS"]) == ["--lang=en-GB"], "yours win"


@pytest.mark.slow
def test_without_browser_the_image_and_pod_are_unchanged(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = render()
    agent = container(objects)
    assert agent["image"].endswith(":0.1.0") or not agent["image"].endswith("-browser")
    assert "dshm" not in {m["name"] for m in agent["volumeMounts"]}
    assert agent["resources"] == yaml.safe_load((CHART / "values.yaml").read_text())["resources"]
    assert not any(name.startswith(("SYNTHETIC_BROWSER", "XDG_")) for name in env_of(objects))
    digest = "sha256:" + "a" * 64
    pinned = container(render("--set", "browser.enabled=true", "--set", f"image.digest={digest}"))
    assert pinned["image"] == f"synthetic-exporter@{digest}", "a digest names the variant itself"


@pytest.mark.slow
def test_existing_secret_is_loaded_with_env_from(render: Callable[..., list[Manifest]]) -> None:
    objects = case(render, (CHART / "ci" / "existing-secret-values.yaml",))
    env_from = container(objects)["envFrom"]
    assert {"secretRef": {"name": "synthetic-exporter-secrets"}} in env_from
    assert "Secret" not in kinds(objects), "the chart never holds secret values"
    names = [var["name"] for var in container(objects)["env"]]
    assert "SYNTHETIC_SECRETS__PARTNER_TOKEN" in names


@pytest.mark.slow
def test_checks_configmap_replaces_the_image_checks(render: Callable[..., list[Manifest]]) -> None:
    values_file = CHART / "ci" / "checks-configmap-values.yaml"
    objects = case(render, (values_file,))
    files = yaml.safe_load(values_file.read_text())["checks"]["configMap"]["files"]
    checks = next(o for o in objects if o["metadata"]["name"].endswith("-checks"))
    assert checks["data"] == files
    mount = next(m for m in container(objects)["volumeMounts"] if m["name"] == "checks")
    assert mount == {"name": "checks", "mountPath": "/app/checks", "readOnly": True}
    pod = workload(objects)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "checks")
    assert volume["configMap"]["name"] == checks["metadata"]["name"]


@pytest.mark.slow
def test_existing_checks_configmap_is_mounted(render: Callable[..., list[Manifest]]) -> None:
    objects = render("--set", "checks.existingConfigMap=my-checks")
    pod = workload(objects)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "checks")
    assert volume["configMap"] == {"name": "my-checks"}


@pytest.mark.slow
def test_checksum_changes_when_config_changes(render: Callable[..., list[Manifest]]) -> None:
    base = checksum(render())
    assert checksum(render()) == base
    assert checksum(render("--set", "resources.requests.cpu=1")) == base
    assert checksum(render("--set", "config.interval=1m")) != base
    targets = render("--set", "config.targets.default.baseUrl=https://b.example.com")
    assert checksum(targets) != base
    files = CHART / "ci" / "checks-configmap-values.yaml"
    with_checks = case(render, (files,))
    changed = render(*values_args((files,)), "--set", "checks.configMap.files.extra\\.py=# nothing")
    assert checksum(changed) != checksum(with_checks)


@pytest.mark.slow
def test_network_policy_admits_only_the_metrics_port(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = case(render, (CHART / "ci" / "networkpolicy-values.yaml",))
    policy = only(objects, "NetworkPolicy")
    assert (
        policy["spec"]["podSelector"]["matchLabels"] == only(objects, "Service")["spec"]["selector"]
    )
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["ports"] == [{"port": PORT, "protocol": "TCP"}]
    assert ingress["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    open_egress = render("--set", "networkPolicy.enabled=true")
    assert only(open_egress, "NetworkPolicy")["spec"]["policyTypes"] == ["Ingress"]


@pytest.mark.slow
def test_topology_spread_defaults_to_the_release_pods(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = case(render, (ROOT / "helm" / "examples" / "production-values.yaml",))
    (constraint,) = workload(objects)["spec"]["template"]["spec"]["topologySpreadConstraints"]
    selector = only(objects, "Service")["spec"]["selector"]
    assert constraint["labelSelector"] == {"matchLabels": selector}
    assert constraint["topologyKey"] == "topology.kubernetes.io/zone"


# Prometheus Operator and Grafana


@pytest.mark.slow
def test_servicemonitor_selects_the_service_and_its_port(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = case(render, (CHART / "ci" / "servicemonitor-prometheusrule-values.yaml",))
    monitor = only(objects, "ServiceMonitor")
    service = only(objects, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    port_names = {port["name"] for port in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
    # The job label is the chart name for every release, as alerts and dashboards expect.
    job_label = monitor["spec"]["jobLabel"]
    assert service["metadata"]["labels"][job_label] == "synthetic-exporter"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def load_alert_rules() -> Any:
    """alerts/synthetic-exporter.rules.yml, parsed."""
    assert ALERTS.is_file(), f"{ALERTS.relative_to(ROOT)} does not exist yet"
    return yaml.safe_load(ALERTS.read_text())


def test_chart_rules_are_a_copy_of_the_alerts_file() -> None:
    assert ALERTS.is_file(), f"{ALERTS.relative_to(ROOT)} does not exist: the chart has no rules"
    assert CHART_ALERTS.is_file(), "run helm/sync-files.sh"
    assert CHART_ALERTS.read_bytes() == ALERTS.read_bytes(), "stale copy: run helm/sync-files.sh"


def test_chart_dashboards_are_copies_of_the_grafana_dashboards() -> None:
    sources = {p.name: p.read_bytes() for p in DASHBOARDS.glob("*.json")}
    assert sources, f"no {DASHBOARDS.relative_to(ROOT)}/*.json yet: the chart has no dashboards"
    copies = {p.name: p.read_bytes() for p in CHART_DASHBOARDS.glob("*.json")}
    assert copies == sources, "stale or missing copies: run helm/sync-files.sh"


@pytest.mark.slow
def test_prometheusrule_spec_is_the_alerts_file(render: Callable[..., list[Manifest]]) -> None:
    expected = load_alert_rules()
    rule = only(render("--set", "prometheusRule.enabled=true"), "PrometheusRule")
    assert rule["spec"] == expected


@pytest.mark.slow
def test_rule_labels_are_added_to_alerts_only(render: Callable[..., list[Manifest]]) -> None:
    expected = load_alert_rules()
    objects = case(render, (CHART / "ci" / "servicemonitor-prometheusrule-values.yaml",))
    rule = only(objects, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert len(rule["spec"]["groups"]) == len(expected["groups"])
    for group, source in zip(rule["spec"]["groups"], expected["groups"], strict=True):
        for rendered, original in zip(group["rules"], source["rules"], strict=True):
            if "alert" in original:
                labels = {"team": "platform", **original.get("labels", {})}
                assert rendered == {**original, "labels": labels}
            else:
                assert rendered == original


@pytest.mark.slow
def test_dashboard_configmaps_hold_exactly_the_grafana_dashboards(
    render: Callable[..., list[Manifest]],
) -> None:
    sources = {p.name: p.read_text(encoding="utf-8") for p in DASHBOARDS.glob("*.json")}
    assert sources, f"no {DASHBOARDS.relative_to(ROOT)}/*.json yet"
    objects = case(render, (CHART / "ci" / "dashboards-values.yaml",))
    configmaps = [o for o in objects if o["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(configmaps) == len(sources)
    rendered: dict[str, str] = {}
    for configmap in configmaps:
        assert configmap["metadata"]["namespace"] == "grafana"
        assert configmap["metadata"]["annotations"] == {"grafana_folder": "Synthetic monitoring"}
        assert len(configmap["data"]) == 1
        rendered.update(configmap["data"])
        assert len(json.dumps(configmap)) < 1024 * 1024, "a ConfigMap holds at most 1 MiB"
    assert rendered == sources
    uids = [json.loads(text).get("uid") for text in rendered.values()]
    assert len(set(uids)) == len(uids)


@pytest.mark.slow
def test_monitoring_objects_are_opt_in(render: Callable[..., list[Manifest]]) -> None:
    objects = render()
    assert not {"ServiceMonitor", "PrometheusRule", "NetworkPolicy"} & set(kinds(objects))
    assert not [o for o in objects if "grafana_dashboard" in o["metadata"]["labels"]]


# values.yaml documentation


def documented_keys() -> Iterator[tuple[int, str, bool]]:
    """Yield (line number, dotted key, documented) for values.yaml's keys.

    A key is documented when the comment lines right above it include a `# --` line (the
    helm-docs convention; commented examples alone do not count).
    """
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        match = re.match(r"^( *)([A-Za-z_][\w.-]*):", line)
        if not match:
            continue
        indent = len(match[1])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match[2]))
        block: list[str] = []
        for above in reversed(lines[: number - 1]):
            if not above.strip().startswith("#"):
                break
            block.append(above.strip())
        documented = any(comment.startswith("# --") for comment in block)
        yield number, ".".join(key for _, key in stack), documented


def test_every_values_key_is_documented() -> None:
    # Keys inside these are Kubernetes objects, documented as a whole.
    literal = (
        "resources.",
        "browser.resources.",
        "podSecurityContext.",
        "securityContext.",
        "livenessProbe.",
        "readinessProbe.",
        "dashboards.labels.",
    )
    missing = [
        f"line {number}: {key}"
        for number, key, documented in documented_keys()
        if not documented and not key.startswith(literal)
    ]
    assert not missing, "values.yaml keys without a `# --` comment above them"
