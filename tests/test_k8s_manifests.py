"""The Kubernetes manifests (`deploy/k8s/`), checked for structure: no cluster needed.

The base and the production overlay are rendered with kustomize (`kustomize build`, or
`kubectl kustomize`, which embeds it; one of them must be on PATH) and the rendered objects are
held to the README's ports, to the Dockerfile (image targets, the unprivileged uid), to the
settings classes (every configured variable is one the code reads, and the code accepts the
values), and to docs/operations.md (the labels its deploy procedure selects on, the commands
it names). The NATS chart values are read as YAML.
"""

from __future__ import annotations

import ast
import base64
import functools
import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from tessera.auth.settings import AuthSettings
from tessera.billing.settings import BillingSettings
from tessera.licensing.settings import LicensingSettings
from tessera.portal.settings import PortalSettings
from tessera.shared.settings import InfraSettings, env_name
from tessera.site.settings import SiteSettings
from tessera.webhooks.settings import WebhooksSettings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
NATS_VALUES = K8S / "nats" / "values.yaml"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
OPERATIONS = ROOT / "docs" / "operations.md"

NAMESPACE = "tessera"
SHARED_SECRETS = {"tessera-nats", "tessera-redis"}
# Variables the manifests set that no settings class reads (none today).
NON_SETTINGS_VARIABLES: set[str] = set()
# Variables whose values are secrets: they belong in Secrets, never in a ConfigMap.
SECRET_NAME = re.compile(
    r"(_DATABASE_URL|_NATS_URL|_REDIS_URL|_PASSWORD|_USERNAME|_SECRETS?|_SECRET_KEY|_ENCRYPTION_KEY)$"
)


@dataclass(frozen=True)
class Svc:
    port: int  # the README's Services table
    prefix: str  # TESSERA_<prefix>_
    settings: type[BaseSettings]
    cli_module: str
    folder: str  # services/<folder>
    database: bool
    autoscaled: bool


SERVICES: dict[str, Svc] = {
    "site": Svc(8080, "SITE", SiteSettings, "tessera.site.cli", "site", False, False),
    "portal-web": Svc(
        8081, "PORTAL", PortalSettings, "tessera.portal.cli", "portal-web", False, False
    ),
    "billing": Svc(8082, "BILLING", BillingSettings, "tessera.billing.cli", "billing", True, True),
    "auth": Svc(8083, "AUTH", AuthSettings, "tessera.auth.cli", "auth", True, False),
    "licensing": Svc(
        8084, "LICENSING", LicensingSettings, "tessera.licensing.cli", "licensing", True, True
    ),
    "webhooks": Svc(
        8085, "WEBHOOKS", WebhooksSettings, "tessera.webhooks.cli", "webhooks", True, False
    ),
}
CLI_NAMES = {
    "tessera-site": "site",
    "tessera-portal": "portal-web",
    "tessera-billing": "billing",
    "tessera-auth": "auth",
    "tessera-licensing": "licensing",
    "tessera-webhooks": "webhooks",
}

Doc = dict[str, Any]


# ----------------------------------------------------------------------------- rendering


def kustomize_command(folder: Path) -> list[str]:
    if tool := shutil.which("kustomize"):
        return [tool, "build", str(folder)]
    if tool := shutil.which("kubectl"):
        return [tool, "kustomize", str(folder)]
    pytest.fail("rendering deploy/k8s needs `kustomize` or `kubectl` on PATH (apt: kubectl)")


@functools.cache
def render(folder: Path) -> tuple[Doc, ...]:
    result = subprocess.run(
        kustomize_command(folder), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kustomize failed on {folder}:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


RENDERS = {"base": BASE, "production": PRODUCTION}


@pytest.fixture(params=sorted(RENDERS))
def docs(request: pytest.FixtureRequest) -> tuple[Doc, ...]:
    return render(RENDERS[request.param])


def of_kind(docs: tuple[Doc, ...], kind: str) -> dict[str, Doc]:
    found: dict[str, Doc] = {}
    for doc in docs:
        if doc["kind"] == kind:
            name = doc["metadata"]["name"]
            assert name not in found, f"two {kind}s named {name}"
            found[name] = doc
    return found


def one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = of_kind(docs, kind)
    assert name in found, f"no {kind} {name}; have {sorted(found)}"
    return found[name]


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def workloads(docs: tuple[Doc, ...]) -> Iterator[Doc]:
    yield from of_kind(docs, "Deployment").values()
    yield from of_kind(docs, "Job").values()


def environment(docs: tuple[Doc, ...], container: Doc) -> dict[str, str]:
    """What the container's process sees: envFrom (ConfigMaps, Secrets decoded), then env."""
    seen: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config = one(docs, "ConfigMap", source["configMapRef"]["name"])
            seen.update(config.get("data", {}))
        else:
            secret = one(docs, "Secret", source["secretRef"]["name"])
            seen.update({k: decode(v) for k, v in secret.get("data", {}).items()})
    for item in container.get("env", []):
        assert "value" in item, f"{item['name']}: only literal env values are used here"
        seen[item["name"]] = item["value"]
    return seen


def decode(value: str) -> str:
    return base64.b64decode(value).decode()


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def quantity(value: str | int | float) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def port_number(container: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"{container['name']}: no port named {port}"
    return int(named[port])


def settings_variables() -> set[str]:
    classes: list[type[BaseSettings]] = [InfraSettings, *(s.settings for s in SERVICES.values())]
    return {env_name(cls, field) for cls in classes for field in cls.model_fields}


def uses(service: str) -> dict[str, bool]:
    """Whether the service's code uses Redis and NATS: the `uses_redis` and `uses_nats` of the
    `ServiceSpec(...)` in its app.py (both default to true); a service that builds no
    ServiceSpec (the site) uses neither."""
    app = ROOT / "services" / SERVICES[service].folder / "src"
    (path,) = app.glob("tessera/*/app.py")
    found = {"redis": False, "nats": False}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ServiceSpec":
            found = {"redis": True, "nats": True}
            for keyword in node.keywords:
                if keyword.arg in ("uses_redis", "uses_nats"):
                    assert isinstance(keyword.value, ast.Constant), f"{path}: {keyword.arg}"
                    found[keyword.arg.removeprefix("uses_")] = bool(keyword.value.value)
    return found


def dockerfile_uid() -> int:
    found = re.search(r"useradd\b.*?--uid\s+(\d+)", DOCKERFILE.read_text(), re.DOTALL)
    assert found, "the Dockerfile creates no user with --uid"
    return int(found.group(1))


# ----------------------------------------------------------------------------- the folders


def kustomization_references(kustomization: Doc) -> list[str]:
    refs: list[str] = [*kustomization.get("resources", []), *kustomization.get("components", [])]
    refs += [p["path"] for p in kustomization.get("patches", []) if "path" in p]
    refs += kustomization.get("patchesStrategicMerge", [])
    for key in ("configMapGenerator", "secretGenerator"):
        for generator in kustomization.get(key, []):
            refs += generator.get("envs", [])
            refs += [f.split("=", 1)[-1] for f in generator.get("files", [])]
    return refs


def test_every_kustomization_lists_every_file_in_its_folder() -> None:
    kustomizations = sorted(K8S.rglob("kustomization.yaml"))
    assert {k.parent for k in kustomizations} >= {BASE, PRODUCTION}
    for path in kustomizations:
        folder = path.parent
        refs = kustomization_references(yaml.safe_load(path.read_text()))
        for ref in refs:
            assert (folder / ref).exists(), f"{path.relative_to(ROOT)} names missing {ref}"
        listed = {Path(os.path.normpath(ref)).parts[0] for ref in refs if not ref.startswith("..")}
        present = {entry.name for entry in folder.iterdir()} - {"kustomization.yaml"}
        assert present == listed, (
            f"{path.relative_to(ROOT)}: in the folder but not listed: {sorted(present - listed)}"
        )
        for sub in folder.iterdir():
            if sub.is_dir():
                assert (sub / "kustomization.yaml").exists(), f"{sub} has no kustomization.yaml"


# ----------------------------------------------------------------------------- workloads


def test_every_service_has_a_deployment_a_service_and_a_disruption_budget(
    docs: tuple[Doc, ...],
) -> None:
    assert set(of_kind(docs, "Deployment")) == set(SERVICES)
    assert set(of_kind(docs, "Service")) == set(SERVICES)
    assert set(of_kind(docs, "PodDisruptionBudget")) == set(SERVICES)
    assert set(of_kind(docs, "Namespace")) == {NAMESPACE}
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]["name"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_probes_and_ports_match_design(docs: tuple[Doc, ...], name: str) -> None:
    svc = SERVICES[name]
    deployment = one(docs, "Deployment", name)
    (container,) = pod_spec(deployment)["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [svc.port]
    for probe, path in (
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ):
        assert probe in container, f"{name} has no {probe}"
        get = container[probe]["httpGet"]
        assert get["path"] == path, f"{name} {probe} probes {get['path']}"
        assert port_number(container, get["port"]) == svc.port, f"{name} {probe} port"
    env = environment(docs, container)
    assert env[f"TESSERA_{svc.prefix}_PORT"] == str(svc.port)
    assert env[f"TESSERA_{svc.prefix}_HOST"] == "0.0.0.0"
    assert container["args"][0] == "serve"

    service = one(docs, "Service", name)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matches(service["spec"]["selector"], labels)
    (port,) = service["spec"]["ports"]
    assert port["port"] == svc.port
    assert port_number(container, port["targetPort"]) == svc.port


def test_every_container_has_requests_and_limits(docs: tuple[Doc, ...]) -> None:
    for workload in workloads(docs):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            resources = container.get("resources", {})
            for resource in ("cpu", "memory"):
                request = resources.get("requests", {}).get(resource)
                limit = resources.get("limits", {}).get(resource)
                assert request is not None and limit is not None, f"{where}: {resource}"
                assert quantity(request) <= quantity(limit), f"{where}: {resource} request > limit"


def test_pods_run_unprivileged_as_the_dockerfile_user_on_a_read_only_root(
    docs: tuple[Doc, ...],
) -> None:
    uid = dockerfile_uid()
    for workload in workloads(docs):
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, f"{name}: runAsNonRoot"
        assert spec["securityContext"]["runAsUser"] == uid, f"{name}: uid {uid}"
        assert spec.get("automountServiceAccountToken") is False, name
        empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in containers(workload):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, f"{name}: read-only root"
            assert context["allowPrivilegeEscalation"] is False, f"{name}: escalation"
            assert context["capabilities"]["drop"] == ["ALL"], name
            writable = {
                m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in empty_dirs
            }
            assert "/tmp" in writable, f"{name}: /tmp is not an emptyDir"  # noqa: S108
            # Whatever the app renders into (the site's pages) must be writable too.
            for variable, value in environment(docs, container).items():
                if variable.endswith("_DIST_DIR"):
                    assert value in writable, f"{name}: {variable}={value} is read-only"


def test_images_are_the_dockerfile_targets_with_pinned_tags(docs: tuple[Doc, ...]) -> None:
    targets = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", DOCKERFILE.read_text(), re.M | re.I))
    for workload in workloads(docs):
        service = workload["metadata"]["labels"]["app.kubernetes.io/name"]
        assert service in targets, f"no Dockerfile target {service}"
        for container in containers(workload):
            image = container["image"]
            found = re.fullmatch(rf"(?:[^:]+/)?tessera/{re.escape(service)}:([\w][\w.-]*)", image)
            assert found, f"{workload['metadata']['name']}: {image} is not tessera/{service}:<tag>"
            assert found.group(1) != "latest", f"{image}: pin a release tag, never latest"


def test_each_service_sees_only_its_own_database_and_credentials(docs: tuple[Doc, ...]) -> None:
    for workload in workloads(docs):
        service = workload["metadata"]["labels"]["app.kubernetes.io/name"]
        svc = SERVICES[service]
        for container in containers(workload):
            env = environment(docs, container)
            databases = {v for v in env if v.endswith("_DATABASE_URL")}
            own = {f"TESSERA_{svc.prefix}_DATABASE_URL"} if svc.database else set()
            assert databases == own, f"{workload['metadata']['name']} sees {sorted(databases)}"
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    secret = source["secretRef"]["name"]
                    assert secret in SHARED_SECRETS or secret.startswith(f"tessera-{service}-"), (
                        f"{workload['metadata']['name']} mounts {secret}"
                    )
            if workload["kind"] == "Deployment":  # what the code uses, and nothing more
                code = uses(service)
                assert ("TESSERA_REDIS_URL" in env) == code["redis"], f"{service}: Redis"
                assert ("TESSERA_NATS_URL" in env) == code["nats"], f"{service}: NATS"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_secret_the_code_reads_comes_from_a_secret(docs: tuple[Doc, ...], name: str) -> None:
    """Production refuses the dev defaults of secrets: each must be supplied, from a Secret."""
    svc = SERVICES[name]
    wanted = {env_name(svc.settings, f) for f in svc.settings.model_fields}
    wanted |= {f"TESSERA_{what.upper()}_URL" for what, used in uses(name).items() if used}
    wanted = {v for v in wanted if SECRET_NAME.search(v)}
    (container,) = pod_spec(one(docs, "Deployment", name))["containers"]
    from_secrets: set[str] = set()
    for source in container.get("envFrom", []):
        if "secretRef" in source:
            from_secrets |= set(one(docs, "Secret", source["secretRef"]["name"])["data"])
    assert wanted <= from_secrets, f"{name}: supply {sorted(wanted - from_secrets)} in a Secret"


def test_secrets_live_in_secrets_and_hold_only_placeholders(docs: tuple[Doc, ...]) -> None:
    for name, config in of_kind(docs, "ConfigMap").items():
        leaked = [k for k in config.get("data", {}) if SECRET_NAME.search(k)]
        assert not leaked, f"ConfigMap {name} holds secrets: {leaked}"
    secrets = of_kind(docs, "Secret")
    assert secrets
    for name, secret in secrets.items():
        for key, value in secret.get("data", {}).items():
            assert "REPLACE_ME" in decode(value), f"Secret {name}/{key}: commit no real secret"


def test_every_configured_variable_is_a_setting_the_code_reads(docs: tuple[Doc, ...]) -> None:
    known = settings_variables() | NON_SETTINGS_VARIABLES
    for kind in ("ConfigMap", "Secret"):
        for name, doc in of_kind(docs, kind).items():
            unknown = set(doc.get("data", {})) - known
            assert not unknown, f"{kind} {name}: no setting reads {sorted(unknown)}"


def filled(variable: str, value: str) -> str:
    """A placeholder replaced by something of the right shape, as an operator would."""
    if "REPLACE_ME" not in value:
        return value
    if variable in ("TESSERA_LICENSING_KEY_ENCRYPTION_KEY", "TESSERA_WEBHOOKS_KEY_ENCRYPTION_KEY"):
        return base64.b64encode(bytes(range(32))).decode()
    if value != "REPLACE_ME":  # a URL with REPLACE_ME in its password or host
        return value.replace("REPLACE_ME", "operator")
    shapes = {
        "_DATABASE_URL": "postgresql://role:pw@postgres:5432/db",
        "TESSERA_NATS_URL": "nats://tessera:pw@nats:4222",
        "TESSERA_REDIS_URL": "redis://:pw@redis:6379/0",
    }
    for suffix, shape in shapes.items():
        if variable.endswith(suffix):
            return shape
    return "operator-supplied-value-" + "x" * 32


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_the_code_accepts_the_configuration(
    docs: tuple[Doc, ...], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = SERVICES[name]
    (container,) = pod_spec(one(docs, "Deployment", name))["containers"]
    for variable in list(os.environ):
        if variable.startswith("TESSERA_"):
            monkeypatch.delenv(variable)
    for variable, value in environment(docs, container).items():
        monkeypatch.setenv(variable, filled(variable, value))
    infra = InfraSettings()
    settings = svc.settings()
    assert infra.env == "production"
    assert getattr(settings, "port") == svc.port  # noqa: B009 - BaseSettings has no port
    if svc.database:
        assert getattr(settings, "auto_migrate") is False  # noqa: B009


@pytest.mark.parametrize(
    ("variable", "settings"),
    [
        ("TESSERA_NATS_URL", InfraSettings),
        ("TESSERA_REDIS_URL", InfraSettings),
        ("TESSERA_BILLING_DATABASE_URL", BillingSettings),
        ("TESSERA_AUTH_DATABASE_URL", AuthSettings),
        ("TESSERA_AUTH_SECRET_KEY", AuthSettings),
        ("TESSERA_AUTH_KEY_ENCRYPTION_KEY", AuthSettings),
        ("TESSERA_LICENSING_DATABASE_URL", LicensingSettings),
        ("TESSERA_LICENSING_KEY_ENCRYPTION_KEY", LicensingSettings),
        ("TESSERA_PORTAL_SECRET_KEY", PortalSettings),
        ("TESSERA_WEBHOOKS_KEY_ENCRYPTION_KEY", WebhooksSettings),
    ],
)
def test_a_forgotten_placeholder_stops_start_up(
    variable: str, settings: type[BaseSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {
        k: decode(v)
        for secret in of_kind(render(BASE), "Secret").values()
        for k, v in secret["data"].items()
    }
    assert values[variable] == "REPLACE_ME"
    monkeypatch.setenv(variable, values[variable])
    with pytest.raises(ValidationError):
        settings()


# ----------------------------------------------------------------------------- migrations


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_with_a_database_migrate_in_a_job_not_at_start(
    docs: tuple[Doc, ...], name: str
) -> None:
    svc = SERVICES[name]
    jobs = {
        j["metadata"]["name"]: j
        for j in of_kind(docs, "Job").values()
        if j["metadata"]["labels"]["app.kubernetes.io/name"] == name
    }
    deployment = one(docs, "Deployment", name)
    (server,) = pod_spec(deployment)["containers"]
    env = environment(docs, server)
    if not svc.database:
        assert not jobs, f"{name} has no database, so nothing to migrate"
        return
    assert env[f"TESSERA_{svc.prefix}_AUTO_MIGRATE"] == "false"
    assert set(jobs) == {f"{name}-migrate"}
    job = jobs[f"{name}-migrate"]
    assert job["spec"].get("backoffLimit") is not None
    assert pod_spec(job)["restartPolicy"] in {"Never", "OnFailure"}
    (migrate,) = pod_spec(job)["containers"]
    assert migrate["args"] == ["migrate"]
    assert migrate["image"] == server["image"], "the Job migrates for the image that runs"
    assert environment(docs, migrate)[f"TESSERA_{svc.prefix}_DATABASE_URL"]
    # The Job's pods are neither the Deployment's nor behind the Service.
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not matches(deployment["spec"]["selector"]["matchLabels"], job_labels)
    assert not matches(one(docs, "Service", name)["spec"]["selector"], job_labels)


def test_deploy_procedure_labels(docs: tuple[Doc, ...]) -> None:
    """docs/operations.md applies everything but `component=server` first (namespace, config,
    secrets, migration Jobs), waits for `component=migration`, then applies the rest."""
    for doc in docs:
        component = doc["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        kind = doc["kind"]
        if kind in {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}:
            assert component == "server", f"{kind} {doc['metadata']['name']}"
        elif kind == "Job":
            assert component == "migration", doc["metadata"]["name"]
        else:
            assert component != "server", f"{kind} {doc['metadata']['name']} would wait"
    text = OPERATIONS.read_text()
    assert "app.kubernetes.io/component!=server" in text
    assert "app.kubernetes.io/component=migration" in text


# ----------------------------------------------------------------------------- scale


def test_replicas_budgets_and_autoscalers(docs: tuple[Doc, ...]) -> None:
    autoscalers = of_kind(docs, "HorizontalPodAutoscaler")
    assert set(autoscalers) == {n for n, s in SERVICES.items() if s.autoscaled}
    for name in SERVICES:
        deployment = one(docs, "Deployment", name)
        replicas = deployment["spec"]["replicas"]
        assert replicas >= 2, f"{name}: one replica is no high availability"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        budget = one(docs, "PodDisruptionBudget", name)["spec"]
        assert matches(budget["selector"]["matchLabels"], labels)
        if "maxUnavailable" in budget:
            assert 1 <= budget["maxUnavailable"] < replicas, name
        else:
            assert 1 <= budget["minAvailable"] < replicas, name
        if name in autoscalers:
            hpa = autoscalers[name]["spec"]
            assert hpa["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": name,
            }
            assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
            assert replicas == hpa["minReplicas"], f"{name}: an apply would fight the HPA"
            assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]


def test_forwarded_headers_are_trusted_from_no_one_in_base_and_from_the_pods_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Base trusts no proxy (the code's default); the production overlay names the narrow
    ranges of the ingress controller and the portal (placeholders the operator replaces),
    for every service alike: never the pod network, where any pod could claim any client."""
    for folder, wanted in ((BASE, []), (PRODUCTION, ["10.0.100.0/28", "10.0.101.0/28"])):
        rendered = render(folder)
        for name in SERVICES:
            (container,) = pod_spec(one(rendered, "Deployment", name))["containers"]
            value = environment(rendered, container)["TESSERA_FORWARDED_ALLOW_IPS"]
            with monkeypatch.context() as env:
                env.setenv("TESSERA_FORWARDED_ALLOW_IPS", value)
                assert InfraSettings().forwarded_allow_ips == wanted, (folder.name, name)
            assert_no_wide_trust(value, f"{folder.name}/{name}")


def assert_no_wide_trust(value: str, where: str) -> None:
    """No trusted proxy range wider than a /16 (IPv4) or /48 (IPv6), and never `*`."""
    for item in filter(None, (part.strip() for part in value.split(","))):
        network = ipaddress.ip_network(item, strict=False)
        widest = 16 if network.version == 4 else 48
        assert network.prefixlen >= widest, f"{where}: {item} trusts too many addresses"


def test_a_wide_trusted_proxy_range_is_refused_by_the_check() -> None:
    """The check above catches the pod network (a /8) and anything wider than a /16."""
    assert_no_wide_trust("10.0.100.0/28,10.0.101.0/28", "ok")
    for wide in ("10.0.0.0/8", "10.0.0.0/15", "192.168.1.1,172.16.0.0/12", "fd00::/8"):
        with pytest.raises(AssertionError):
            assert_no_wide_trust(wide, "wide")


def test_base_runs_two_replicas_of_every_service() -> None:
    for name, deployment in of_kind(render(BASE), "Deployment").items():
        assert deployment["spec"]["replicas"] == 2, name


def test_production_overlay_pins_new_tags_and_points_at_managed_servers() -> None:
    base, production = render(BASE), render(PRODUCTION)
    base_images = {c["image"] for w in workloads(base) for c in containers(w)}
    for workload in workloads(production):
        for container in containers(workload):
            assert container["image"] not in base_images, "the overlay sets its own tags"
    secrets = {
        k: decode(v)
        for secret in of_kind(production, "Secret").values()
        for k, v in secret["data"].items()
    }
    for name, svc in SERVICES.items():
        if not svc.database:
            continue
        url = urlsplit(secrets[f"TESSERA_{svc.prefix}_DATABASE_URL"])
        assert url.scheme == "postgresql"
        assert url.username == name, "one role per service"
        assert url.path == f"/{name}", "one database per service"
        assert "sslmode=require" in url.query, "a managed Postgres is reached over TLS"
        assert not (url.hostname or "").endswith(".svc.cluster.local")
    redis = urlsplit(secrets["TESSERA_REDIS_URL"])
    assert redis.scheme == "rediss", "a managed Redis is reached over TLS"
    nats = urlsplit(secrets["TESSERA_NATS_URL"])
    values = yaml.safe_load(NATS_VALUES.read_text())
    assert nats.username == values["config"]["merge"]["authorization"]["user"]
    assert nats.port == 4222


# ----------------------------------------------------------------------------- NATS


def test_nats_values_run_a_three_node_jetstream_cluster_on_files() -> None:
    values = yaml.safe_load(NATS_VALUES.read_text())
    config = values["config"]
    assert config["cluster"]["enabled"] is True
    assert config["cluster"]["replicas"] == 3
    jetstream = config["jetstream"]
    assert jetstream["enabled"] is True
    assert jetstream["fileStore"]["enabled"] is True
    assert jetstream["fileStore"]["pvc"]["enabled"] is True
    assert quantity(jetstream["fileStore"]["maxSize"]) < quantity(
        jetstream["fileStore"]["pvc"]["size"]
    )
    assert values["podDisruptionBudget"]["enabled"] is True
    assert "kubernetes.io/hostname" in values["podTemplate"]["topologySpreadConstraints"]
    # The same server as compose, pinned.
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    compose_tag = compose["services"]["nats"]["image"].split(":", 1)[1]
    assert values["container"]["image"]["tag"] == compose_tag != "latest"
    # The password comes from a Secret through the environment, never from the values.
    password = config["merge"]["authorization"]["password"]
    variable = re.fullmatch(r"<< \$(\w+) >>", password)
    assert variable, f"password is not an environment reference: {password!r}"
    assert "secretKeyRef" in values["container"]["env"][variable.group(1)]["valueFrom"]


# ----------------------------------------------------------------------------- the docs


def command_tree(cli_module: str) -> Any:
    """The service's Typer app as a click command tree (typer ships its own click)."""
    module = __import__(cli_module, fromlist=["cli"])
    return typer.main.get_command(module.cli)


def resolves(command: Any, words: list[str]) -> bool:
    for word in words:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            return True  # a leaf command: the rest are its arguments
        if word not in subcommands:
            return False
        command = subcommands[word]
    return True


def test_operations_doc_names_only_commands_that_exist() -> None:
    text = OPERATIONS.read_text()
    code = " ".join(re.findall(r"```.*?```|`[^`\n]+`", text, re.DOTALL))
    named = re.findall(r"\b(tessera-[a-z]+)((?: [a-z][a-z-]*)*)", code)
    assert named, "docs/operations.md names no operator command"
    for binary, rest in named:
        if binary not in CLI_NAMES:
            continue
        tree = command_tree(SERVICES[CLI_NAMES[binary]].cli_module)
        assert resolves(tree, rest.split()), f"docs/operations.md: `{binary}{rest}` does not exist"
    for rotation in ("tessera-licensing keys rotate", "tessera-auth keys rotate"):
        assert rotation in code, f"docs/operations.md does not say how to run {rotation}"
