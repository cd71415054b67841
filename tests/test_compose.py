"""The operator container setup, checked for structure (no Docker engine needed).

`docker-compose.yml`, the `Dockerfile`, the files under `deploy/` and `.env.example` are
read as text or YAML and held to the README's ports, one database per service and health checks
and to the settings classes (every variable the code reads is documented, and every
documented or configured variable is one the code reads).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from tessera.auth.settings import AuthSettings
from tessera.billing.settings import BillingSettings
from tessera.licensing.settings import LicensingSettings
from tessera.portal.settings import PortalSettings
from tessera.shared.settings import InfraSettings
from tessera.site.settings import SiteSettings
from tessera.webhooks.settings import WebhooksSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
POSTGRES_INIT = ROOT / "deploy" / "postgres" / "init"
NATS_CONF = ROOT / "deploy" / "nats" / "nats.conf"
OTEL_CONF = ROOT / "deploy" / "otel" / "collector.yaml"
DEVTOOLS_SRC = ROOT / "devtools" / "src"


@dataclass(frozen=True)
class App:
    settings: type[BaseSettings]
    port: int
    command: str
    database: str | None = None


# One compose service (and Dockerfile target) per Tessera service.
APPS: dict[str, App] = {
    "billing": App(BillingSettings, 8082, "tessera-billing", "billing"),
    "auth": App(AuthSettings, 8083, "tessera-auth", "auth"),
    "licensing": App(LicensingSettings, 8084, "tessera-licensing", "licensing"),
    "webhooks": App(WebhooksSettings, 8085, "tessera-webhooks", "webhooks"),
    "portal-web": App(PortalSettings, 8081, "tessera-portal"),
    "site": App(SiteSettings, 8080, "tessera-site"),
}
DATABASES = {"auth", "billing", "licensing", "webhooks"}
INFRA = {"nats", "postgres", "redis", "mailpit", "otel-collector"}
SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    InfraSettings,
    *(app.settings for app in APPS.values()),
)

# The README's Services table: the ports each compose service publishes on the host (each to
# the same port in its container). The collector is reached on the compose network only.
DESIGN_PORTS: dict[str, set[int]] = {
    "site": {8080},
    "portal-web": {8081},
    "billing": {8082},
    "auth": {8083},
    "licensing": {8084},
    "webhooks": {8085},
    "mailpit": {8025, 1025},
    "nats": {4222},
    "postgres": {5432},
    "redis": {6379},
    "otel-collector": set(),
}

# Variables of `./dev` and the test suite (devtools), not of any service's settings.
DEV_TOOL_VARIABLES = {"TESSERA_POSTGRES_URL"}

INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<modifier>[^}]*)\}")
ENV_LINE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


# ----------------------------------------------------------------------------- helpers


def env_names(settings_cls: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (its prefix + each field)."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    names = set()
    for field_name, field in settings_cls.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, AliasChoices):  # the first choice is the documented name
            alias = alias.choices[0]
        names.add((alias if isinstance(alias, str) else f"{prefix}{field_name}").upper())
    return names


def all_setting_names() -> set[str]:
    return set().union(*(env_names(cls) for cls in SETTINGS_CLASSES))


def interpolate(value: str) -> str:
    """Compose's `${VAR...}` filled as compose would from a .env copied from .env.example."""
    example = read_env_example()

    def fill(match: re.Match[str]) -> str:
        assert match["name"] in example, f"${{{match['name']}}} is not in .env.example"
        return example[match["name"]][0]

    return INTERPOLATION.sub(fill, value)


def as_environment(environment: dict[str, Any] | list[str] | None) -> dict[str, str]:
    if environment is None:
        return {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def published_ports(service: dict[str, Any]) -> list[tuple[str | None, int, int]]:
    """(host ip, host port, container port) for each published port, either syntax."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append((entry.get("host_ip"), int(entry["published"]), int(entry["target"])))
            continue
        spec = str(entry).split("/", 1)[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 3:
            ports.append((parts[0], int(parts[1]), int(parts[2])))
        elif len(parts) == 2:
            ports.append((None, int(parts[0]), int(parts[1])))
        else:
            pytest.fail(f"port {entry!r} is not published on a fixed host port")
    return ports


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def image_is_pinned(reference: str) -> bool:
    """True for `name:tag` (tag not `latest`) or `name@sha256:...`."""
    if "@sha256:" in reference:
        return True
    name, _, tag = reference.rpartition(":")
    return bool(name) and "/" not in tag and tag not in {"", "latest"}


def read_env_example() -> dict[str, tuple[str, str]]:
    """Each variable of .env.example: (value, the comment line just above it)."""
    entries: dict[str, tuple[str, str]] = {}
    previous = ""
    for raw in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        match = ENV_LINE.match(line)
        if match:
            assert match["name"] not in entries, f"{match['name']} is listed twice"
            entries[match["name"]] = (match["value"], previous)
        previous = line
    return entries


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]]

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


def logical_lines(text: str) -> Iterator[str]:
    """Dockerfile lines with comments dropped and backslash continuations joined."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for line in logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, []))
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return stages


def exec_form(args: str) -> list[str]:
    """A JSON exec-form instruction's argv (`["a", "b"]`), or its shell words."""
    if args.startswith("["):
        loaded = json.loads(args)
        assert isinstance(loaded, list), args
        return [str(word) for word in loaded]
    return shlex.split(args)


def copy_paths(args: str) -> tuple[list[str], str]:
    """A COPY's sources and destination, its --flags left out."""
    words = [word for word in exec_form(args) if not word.startswith("--")]
    return words[:-1], words[-1]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    parsed = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    named = {stage.name: stage for stage in parsed if stage.name}
    assert len(named) == len(parsed), "every Dockerfile stage should be named"
    return named


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No TESSERA_* variable from the caller's shell leaks into a settings object."""
    for name in list(os.environ):
        if name.upper().startswith("TESSERA_"):
            monkeypatch.delenv(name)
    return monkeypatch


# ----------------------------------------------------------------------------- compose


def test_compose_runs_exactly_the_five_services_and_their_infrastructure(
    services: dict[str, Any],
) -> None:
    assert set(services) == set(APPS) | INFRA


@pytest.mark.parametrize("name", sorted(set(APPS) | INFRA))
def test_every_service_has_a_health_check(services: dict[str, Any], name: str) -> None:
    healthcheck = services[name].get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    assert not healthcheck.get("disable", False)
    test = healthcheck.get("test")
    assert test, f"{name}'s healthcheck has no test"
    if isinstance(test, list):
        assert test[0] in {"CMD", "CMD-SHELL"}, f"{name}'s healthcheck is {test[0]}"
        assert len(test) > 1


@pytest.mark.parametrize("name", sorted(APPS))
def test_app_health_checks_probe_healthz_on_the_service_port(
    services: dict[str, Any], name: str
) -> None:
    assert f"127.0.0.1:{APPS[name].port}/healthz" in healthcheck_text(services[name])


def test_infrastructure_health_checks_probe_the_real_server(services: dict[str, Any]) -> None:
    assert "8222/healthz" in healthcheck_text(services["nats"])
    assert "pg_isready" in healthcheck_text(services["postgres"])
    # Over TCP, so the check cannot pass while the init scripts still run on the socket.
    assert "-h 127.0.0.1" in healthcheck_text(services["postgres"])
    assert "redis-cli" in healthcheck_text(services["redis"])
    assert "ping" in healthcheck_text(services["redis"])
    assert "readyz" in healthcheck_text(services["mailpit"])
    assert ":13133/" in healthcheck_text(services["otel-collector"])


def test_no_image_uses_the_latest_tag_or_is_untagged(
    services: dict[str, Any], stages: dict[str, Stage]
) -> None:
    for name, service in services.items():
        if "image" in service:
            assert image_is_pinned(service["image"]), f"{name}: {service['image']} is not pinned"
        else:
            assert "build" in service, f"{name} has neither an image nor a build"
    for stage in stages.values():
        if stage.base not in stages:
            assert image_is_pinned(stage.base), f"FROM {stage.base} is not pinned"


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("nats", r"^nats:2\.1[01]\.\d+-alpine$"),
        ("postgres", r"^postgres:16\.\d+-alpine$"),
        ("redis", r"^redis:\d+\.\d+\.\d+-alpine$"),
        ("mailpit", r"^axllent/mailpit:v\d+\.\d+\.\d+$"),
    ],
)
def test_infrastructure_images_are_pinned_to_a_release(
    services: dict[str, Any], name: str, reference: str
) -> None:
    assert re.match(reference, services[name]["image"]), services[name]["image"]


def test_image_pin_check_rejects_latest_and_untagged() -> None:
    assert not image_is_pinned("nats")
    assert not image_is_pinned("nats:latest")
    assert not image_is_pinned("registry.example:5000/nats")
    assert image_is_pinned("nats:2.11.9-alpine")
    assert image_is_pinned("registry.example:5000/nats:2.11.9")
    assert image_is_pinned("nats@sha256:" + "0" * 64)


@pytest.mark.parametrize("name", sorted(DESIGN_PORTS))
def test_published_ports_match_the_design_table(services: dict[str, Any], name: str) -> None:
    ports = published_ports(services[name])
    assert {host for _, host, _ in ports} == DESIGN_PORTS[name]
    for _, host, container in ports:
        assert host == container, f"{name} maps host {host} to container {container}"


@pytest.mark.parametrize("name", sorted(INFRA))
def test_infrastructure_ports_are_published_on_loopback_only(
    services: dict[str, Any], name: str
) -> None:
    for host_ip, host, _ in published_ports(services[name]):
        assert host_ip == "127.0.0.1", f"{name} publishes {host} on {host_ip or 'every address'}"


@pytest.mark.parametrize("name", sorted(APPS))
def test_each_app_service_gets_only_its_own_database_url(
    services: dict[str, Any], name: str
) -> None:
    environment = as_environment(services[name].get("environment"))
    database_urls = {key for key in environment if key.endswith("DATABASE_URL")}
    database = APPS[name].database
    expected = {f"TESSERA_{database.upper()}_DATABASE_URL"} if database else set()
    assert database_urls == expected
    # Nor does a password of another service's database reach it by any other name.
    for other in DATABASES - {database}:
        for value in environment.values():
            assert f"{other.upper()}_DB_PASSWORD" not in value, f"{name} sees {other}'s password"


@pytest.mark.parametrize("name", sorted(DATABASES))
def test_database_url_uses_the_service_role_and_database(
    services: dict[str, Any], name: str
) -> None:
    environment = as_environment(services[name]["environment"])
    url = urlsplit(interpolate(environment[f"TESSERA_{name.upper()}_DATABASE_URL"]))
    assert url.scheme in {"postgresql", "postgres"}
    assert url.hostname == "postgres"
    assert url.port == 5432
    assert url.username == name
    assert url.password == read_env_example()[f"{name.upper()}_DB_PASSWORD"][0]
    assert url.path == f"/{name}"


@pytest.mark.parametrize("name", sorted(APPS))
def test_app_service_environment_is_valid_production_settings(
    services: dict[str, Any], name: str, clean_environment: pytest.MonkeyPatch
) -> None:
    app = APPS[name]
    environment = {
        key: interpolate(value)
        for key, value in as_environment(services[name].get("environment")).items()
    }
    own = env_names(app.settings)
    shared = env_names(InfraSettings)
    for key in environment:
        if key.startswith("TESSERA_"):
            assert key in own | shared, f"{name} sets {key}, which its settings do not read"
    for key, value in environment.items():
        clean_environment.setenv(key, value)
    infra = InfraSettings()
    settings = app.settings()
    assert infra.env == "production"
    assert infra.nats_url.hosts()[0]["host"] == "nats"
    assert infra.redis_url.host == "redis"
    assert infra.otel_exporter_otlp_endpoint == "http://otel-collector:4318"
    assert getattr(settings, "host") == "0.0.0.0"  # noqa: B009 - not every class declares it
    assert getattr(settings, "port") == app.port  # noqa: B009


# Settings whose code default is a public dev value: compose must take them from .env
# (required, no fallback), so a stack never runs in production on a published secret.
PRODUCTION_SECRETS: dict[str, set[str]] = {
    "auth": {"TESSERA_AUTH_SECRET_KEY", "TESSERA_AUTH_KEY_ENCRYPTION_KEY"},
    "billing": {"TESSERA_BILLING_STRIPE_SECRET_KEY", "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS"},
    "licensing": {"TESSERA_LICENSING_KEY_ENCRYPTION_KEY"},
    "webhooks": {"TESSERA_WEBHOOKS_KEY_ENCRYPTION_KEY"},
}


@pytest.mark.parametrize("name", sorted(PRODUCTION_SECRETS))
def test_secrets_come_from_env_and_differ_from_the_dev_defaults(
    services: dict[str, Any], name: str, clean_environment: pytest.MonkeyPatch
) -> None:
    raw = as_environment(services[name]["environment"])
    settings_cls = APPS[name].settings
    defaults = settings_cls().model_dump()
    for key, value in raw.items():
        clean_environment.setenv(key, interpolate(value))
    configured = settings_cls().model_dump()
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    for variable in PRODUCTION_SECRETS[name]:
        match = INTERPOLATION.fullmatch(raw.get(variable, ""))
        assert match, f"{name}: {variable} should be exactly one ${{VAR:?...}} from .env"
        assert match["modifier"].startswith(":?"), f"{name}: {variable} has a fallback"
        field = variable.removeprefix(prefix).lower()
        assert configured[field] != defaults[field], (
            f"{name}: .env.example repeats {variable}'s dev default"
        )


@pytest.mark.parametrize("name", sorted(APPS))
def test_paths_the_environment_names_exist_in_the_image(
    services: dict[str, Any], stages: dict[str, Stage], name: str
) -> None:
    stage = stages[name]
    provided = {copy_paths(copy)[1].rstrip("/") for copy in stage.all("COPY")}
    provided |= {
        word.rstrip("/")
        for run in stage.all("RUN")
        for word in shlex.split(run)
        if word.startswith("/app/")
    }
    # The image's ENV, overridden (as at run time) by the compose environment.
    environment = dict(pair.split("=", 1) for env in stage.all("ENV") for pair in shlex.split(env))
    environment |= as_environment(services[name].get("environment"))
    for key, value in environment.items():
        if value.startswith("/app/"):
            assert value.rstrip("/") in provided, f"{name}: {key}={value} is not in the image"


def test_portal_reaches_the_services_on_the_compose_network(
    services: dict[str, Any], clean_environment: pytest.MonkeyPatch
) -> None:
    for key, value in as_environment(services["portal-web"]["environment"]).items():
        clean_environment.setenv(key, interpolate(value))
    portal = PortalSettings()
    assert (portal.auth_url.host, portal.auth_url.port) == ("auth", APPS["auth"].port)
    assert (portal.billing_url.host, portal.billing_url.port) == ("billing", APPS["billing"].port)
    assert (portal.licensing_url.host, portal.licensing_url.port) == (
        "licensing",
        APPS["licensing"].port,
    )


def test_only_the_portal_is_trusted_to_forward_client_addresses(
    compose: dict[str, Any], services: dict[str, Any], clean_environment: pytest.MonkeyPatch
) -> None:
    """The services the portal calls for browsers trust X-Forwarded-For from the portal's
    fixed address on the compose network, and from nothing else; the portal, which
    browsers reach directly, trusts none."""
    subnet = ipaddress.ip_network(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    portal = ipaddress.ip_address(services["portal-web"]["networks"]["default"]["ipv4_address"])
    assert portal in subnet
    for name in APPS:
        environment = as_environment(services[name]["environment"])
        with clean_environment.context() as env:
            for key, value in environment.items():
                env.setenv(key, interpolate(value))
            trusted = InfraSettings().forwarded_allow_ips
        if name in ("auth", "billing", "licensing"):
            assert trusted == [str(portal)], name
        else:
            assert trusted == [], name


def test_site_links_point_at_the_public_ports(
    services: dict[str, Any], clean_environment: pytest.MonkeyPatch
) -> None:
    for key, value in as_environment(services["site"]["environment"]).items():
        clean_environment.setenv(key, interpolate(value))
    site = SiteSettings()
    for url, target in (
        (site.portal_url, "portal-web"),
        (site.billing_url, "billing"),
        (site.licensing_url, "licensing"),
    ):
        assert url.host == "localhost", f"a browser cannot reach {url}"
        assert url.port in DESIGN_PORTS[target]


@pytest.mark.parametrize("name", sorted(APPS))
def test_app_services_wait_for_healthy_infrastructure(services: dict[str, Any], name: str) -> None:
    depends_on = services[name].get("depends_on")
    assert isinstance(depends_on, dict), f"{name}: depends_on must name a condition"
    for dependency, spec in depends_on.items():
        assert dependency in services, f"{name} depends on unknown {dependency}"
        assert spec.get("condition") == "service_healthy", f"{name} -> {dependency}"
    environment = as_environment(services[name].get("environment"))
    needed = {"otel-collector"} if "OTEL_EXPORTER_OTLP_ENDPOINT" in environment else set()
    if "TESSERA_NATS_URL" in environment:
        needed.add("nats")
    if "TESSERA_REDIS_URL" in environment:
        needed.add("redis")
    if APPS[name].database:
        needed.add("postgres")
    assert {"nats", "redis", "otel-collector"} <= needed, f"{name} lacks the shared infra"
    assert needed <= set(depends_on), f"{name} starts before {needed - set(depends_on)}"


def test_portal_waits_for_the_services_it_calls(services: dict[str, Any]) -> None:
    assert {"auth", "billing", "licensing"} <= set(services["portal-web"]["depends_on"])


@pytest.mark.parametrize("name", sorted(APPS))
def test_app_services_build_their_own_dockerfile_target(
    services: dict[str, Any], stages: dict[str, Stage], name: str
) -> None:
    service = services[name]
    assert "image" not in service, f"{name} should be built, not pulled"
    build = service["build"]
    assert isinstance(build, dict)
    assert build.get("context") in {".", "./"}
    assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
    assert build.get("target") == name
    assert name in stages


def test_otel_collector_is_built_from_the_pinned_upstream_image(
    services: dict[str, Any], stages: dict[str, Stage]
) -> None:
    build = services["otel-collector"]["build"]
    assert build["target"] == "otel-collector"
    assert re.match(
        r"^otel/opentelemetry-collector-contrib:\d+\.\d+\.\d+$", stages["otel-collector"].base
    )


def test_stateful_infrastructure_keeps_its_data_in_named_volumes(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, data_dir in (("nats", "/data"), ("postgres", "/var/lib/postgresql/data")):
        mounts = [str(v).split(":") for v in services[name].get("volumes", [])]
        named = [m for m in mounts if len(m) >= 2 and m[1] == data_dir]
        assert named, f"{name} keeps {data_dir} in no volume"
        assert named[0][0] in declared, f"{name}'s {data_dir} is not a named volume"


def test_infrastructure_configuration_files_are_mounted(services: dict[str, Any]) -> None:
    def sources(name: str) -> dict[str, str]:
        mounts = [str(v).split(":") for v in services[name].get("volumes", [])]
        return {m[1]: m[0] for m in mounts if len(m) >= 2}

    assert sources("nats")["/etc/nats/nats.conf"] == "./deploy/nats/nats.conf"
    assert "/etc/nats/nats.conf" in services["nats"]["command"]
    assert sources("postgres")["/docker-entrypoint-initdb.d"] == "./deploy/postgres/init"
    assert (
        sources("otel-collector")["/etc/otelcol-contrib/config.yaml"]
        == "./deploy/otel/collector.yaml"
    )


def test_compose_passwords_have_no_silent_defaults() -> None:
    for match in INTERPOLATION.finditer(COMPOSE_FILE.read_text(encoding="utf-8")):
        if "PASSWORD" in match["name"]:
            assert match["modifier"].startswith((":?", "?")), f"${{{match['name']}}} defaults"


# ----------------------------------------------------------------------------- Dockerfile


def test_dockerfile_pins_its_python_base_image(stages: dict[str, Stage]) -> None:
    external = {stage.base for stage in stages.values() if stage.base not in stages}
    pythons = {base for base in external if base.startswith("python:")}
    assert pythons, "no python base image"
    for base in pythons:
        assert re.match(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$", base), base


def test_dockerfile_pins_uv_and_installs_from_the_lock(stages: dict[str, Stage]) -> None:
    runs = [run for stage in stages.values() for run in stage.all("RUN")]
    assert any(re.search(r"pip install [^&]*\buv==\d+\.\d+\.\d+", run) for run in runs)
    syncs = [run for run in runs if "uv sync" in run]
    assert syncs
    for run in syncs:
        assert "--frozen" in run or "--locked" in run, run
        assert "--no-dev" in run, run
        assert "--package tessera-" in run, run


@pytest.mark.parametrize("name", sorted(APPS))
def test_dockerfile_defines_each_service_target(stages: dict[str, Stage], name: str) -> None:
    assert name in stages, f"no `FROM ... AS {name}` stage"


@pytest.mark.parametrize("name", sorted(APPS))
def test_each_service_target_runs_as_a_non_root_user(stages: dict[str, Stage], name: str) -> None:
    user = stages[name].last("USER")
    assert user, f"{name} declares no USER"
    assert user.split(":")[0] not in {"root", "0"}, f"{name} runs as {user}"
    # USER comes after every RUN, so nothing later in the stage undoes it.
    keywords = [keyword for keyword, _ in stages[name].instructions]
    assert "RUN" not in keywords[keywords.index("USER") :]


def test_the_service_user_is_created_unprivileged(stages: dict[str, Stage]) -> None:
    created: dict[str, list[str]] = {}
    for stage in stages.values():
        for run in stage.all("RUN"):
            for command in run.split("&&"):
                words = shlex.split(command)
                if words and words[0] == "useradd":
                    created[words[-1]] = words
    assert created, "no useradd"
    for name in APPS:
        user = (stages[name].last("USER") or "").split(":")[0]
        assert user in created, f"{name} runs as {user!r}, which no useradd creates"
        words = created[user]
        for flag in ("--uid", "-u"):
            if flag in words:
                assert words[words.index(flag) + 1] != "0", f"{user} has uid 0"
        assert "--non-unique" not in words
        assert "-o" not in words


@pytest.mark.parametrize("name", sorted(APPS))
def test_each_service_target_serves_its_console_script(stages: dict[str, Stage], name: str) -> None:
    stage = stages[name]
    entrypoint = exec_form(stage.last("ENTRYPOINT") or "[]")
    command = exec_form(stage.last("CMD") or "[]")
    assert [*entrypoint, *command] == [APPS[name].command, "serve", "--host", "0.0.0.0"]
    assert str(APPS[name].port) in (stage.last("EXPOSE") or "").split()


@pytest.mark.parametrize("name", sorted(APPS))
def test_each_service_target_has_a_urllib_health_check(stages: dict[str, Stage], name: str) -> None:
    healthcheck = stages[name].last("HEALTHCHECK")
    assert healthcheck, f"{name} has no HEALTHCHECK"
    assert "urllib.request" in healthcheck
    assert "/healthz" in healthcheck
    assert "127.0.0.1" in healthcheck


@pytest.mark.parametrize("name", sorted(APPS))
def test_each_service_target_copies_only_its_own_virtualenv(
    stages: dict[str, Stage], name: str
) -> None:
    copies = stages[name].all("COPY") + stages[name].all("ADD")
    froms = {match[1] for copy in copies if (match := re.search(r"--from=(\S+)", copy))}
    assert len(froms) == 1, f"{name} copies from {froms or 'no builder'}"
    (builder,) = froms
    # That builder installs this service's package alone.
    package = APPS[name].command.removeprefix("tessera-")
    syncs = [run for run in stages[builder].all("RUN") if "uv sync" in run]
    assert syncs
    assert all(f"--package tessera-{package}" in run for run in syncs), syncs
    # From the build context, a final stage takes data files only (the catalog, the docs),
    # never source: the code arrives installed in the virtualenv.
    for copy in copies:
        if "--from=" not in copy:
            for source in copy_paths(copy)[0]:
                assert source.startswith(("deploy/", "docs")), f"{name}: COPY {copy}"


def test_files_copied_from_the_context_exist_and_are_not_ignored(
    stages: dict[str, Stage],
) -> None:
    ignored = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    for stage in stages.values():
        for copy in stage.all("COPY"):
            if "--from=" in copy:
                continue
            for source in copy_paths(copy)[0]:
                path = source.rstrip("/")
                assert (ROOT / path).exists(), f"COPY {source}: no such file"
                for pattern in ignored:
                    assert not (path == pattern or path.startswith(pattern + "/")), (
                        f"COPY {source} is excluded by .dockerignore ({pattern})"
                    )


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", ".dev", ".git", ".env"):
        assert required in patterns, f".dockerignore lacks {required}"
    assert any("__pycache__" in p for p in patterns)
    assert any("cache" in p and "pytest" in p for p in patterns)


# ----------------------------------------------------------------------------- deploy/


def test_postgres_init_script_creates_each_database_and_role() -> None:
    scripts = sorted(p for p in POSTGRES_INIT.iterdir() if p.suffix in {".sh", ".sql"})
    assert scripts, "no init script"
    text = "\n".join(p.read_text(encoding="utf-8") for p in scripts)
    # Commented-out statements create nothing: drop shell and SQL comments.
    text = re.sub(r"^\s*#.*$", "", text, flags=re.MULTILINE)
    text = re.sub(r"--(?![\w-]).*$", "", text, flags=re.MULTILINE)
    roles = set(re.findall(r"CREATE ROLE (\w+) (?:WITH )?LOGIN", text, re.IGNORECASE))
    owners = dict(re.findall(r"CREATE DATABASE (\w+) (?:WITH )?OWNER (\w+)", text, re.IGNORECASE))
    assert roles == DATABASES
    assert owners == {name: name for name in DATABASES}, "each role owns its own database"
    for name in DATABASES:
        assert re.search(rf"REVOKE ALL ON DATABASE {name} FROM PUBLIC", text, re.IGNORECASE)
    # Passwords arrive from the environment, never written in the script.
    assert not re.search(r"PASSWORD\s+'", text, re.IGNORECASE)


def test_postgres_receives_each_role_password(services: dict[str, Any]) -> None:
    environment = as_environment(services["postgres"]["environment"])
    script = "\n".join(p.read_text(encoding="utf-8") for p in POSTGRES_INIT.iterdir())
    for name in DATABASES:
        variable = f"{name.upper()}_DB_PASSWORD"
        assert variable in environment, f"postgres does not receive {variable}"
        assert variable in script, f"the init script ignores {variable}"


def test_nats_config_enables_jetstream_and_monitoring() -> None:
    text = NATS_CONF.read_text(encoding="utf-8")
    assert re.search(r"^\s*port:\s*4222\b", text, re.MULTILINE)
    assert re.search(r"^\s*http_port:\s*8222\b", text, re.MULTILINE)
    assert re.search(r"^\s*jetstream\s*\{", text, re.MULTILINE)
    assert re.search(r"store_dir:\s*/data\b", text)


def test_otel_collector_receives_otlp_http_and_prints_it(services: dict[str, Any]) -> None:
    config = yaml.safe_load(OTEL_CONF.read_text(encoding="utf-8"))
    http = config["receivers"]["otlp"]["protocols"]["http"]
    assert http["endpoint"].endswith(":4318")
    assert "debug" in config["exporters"]
    assert "health_check" in config["service"]["extensions"]
    assert config["extensions"]["health_check"]["endpoint"].endswith(":13133")
    pipelines = config["service"]["pipelines"]
    for signal in ("traces", "metrics", "logs"):
        assert "otlp" in pipelines[signal]["receivers"]
        assert "debug" in pipelines[signal]["exporters"]
    # An operator reads the spans themselves in `docker compose logs otel-collector`:
    # `basic` would print only how many arrived.
    assert config["exporters"]["debug"]["verbosity"] == "detailed"


@pytest.mark.parametrize("name", sorted(APPS))
def test_each_service_ships_its_traces_to_the_collector_of_this_file(
    services: dict[str, Any], name: str
) -> None:
    """The endpoint a service exports to is the compose service that runs the collector,
    on the port where the mounted config's OTLP/HTTP receiver listens for the network."""
    environment = as_environment(services[name].get("environment"))
    endpoint = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
    # OTLP over HTTP: the exporter appends /v1/traces to a bare base URL.
    assert endpoint.scheme == "http" and endpoint.path in ("", "/"), endpoint.geturl()
    assert endpoint.hostname in services, f"{name} exports to {endpoint.hostname}, no service"
    collector = services[endpoint.hostname]
    mounts = [str(volume).split(":") for volume in collector.get("volumes", [])]
    sources = {m[1]: m[0] for m in mounts if len(m) >= 2}
    config_file = (ROOT / sources["/etc/otelcol-contrib/config.yaml"]).resolve()
    assert config_file == OTEL_CONF
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    host, port = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)
    assert int(port) == endpoint.port, f"{name} sends to :{endpoint.port}, collector on :{port}"
    assert host == "0.0.0.0", "the receiver must listen on the compose network, not loopback"
    for signal in ("traces", "metrics"):  # the services send both (docs/operations.md#metrics)
        assert "otlp" in config["service"]["pipelines"][signal]["receivers"]
        assert config["service"]["pipelines"][signal]["exporters"]


# ----------------------------------------------------------------------------- .env.example


def test_every_variable_in_env_example_is_a_real_setting() -> None:
    settings = all_setting_names()
    compose_text = COMPOSE_FILE.read_text(encoding="utf-8")
    compose_variables = {m["name"] for m in INTERPOLATION.finditer(compose_text)}
    devtools = "\n".join(p.read_text(encoding="utf-8") for p in DEVTOOLS_SRC.rglob("*.py"))
    for name in read_env_example():
        if name in DEV_TOOL_VARIABLES:
            assert name in devtools, f"{name} is no longer read by devtools"
        elif name.startswith("TESSERA_") or name in settings:
            assert name in settings, f"{name} is in .env.example but no setting reads it"
        else:
            assert name in compose_variables, f"{name} is in .env.example but compose ignores it"


def test_every_setting_appears_in_env_example() -> None:
    missing = all_setting_names() - set(read_env_example())
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_every_compose_variable_appears_in_env_example() -> None:
    compose_text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = {m["name"] for m in INTERPOLATION.finditer(compose_text)}
    assert used, "compose reads no variables (passwords should come from .env)"
    missing = used - set(read_env_example())
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_compose_secrets_in_env_example_fit_in_urls() -> None:
    example = read_env_example()
    in_urls = set()
    for line in COMPOSE_FILE.read_text(encoding="utf-8").splitlines():
        for match in INTERPOLATION.finditer(line):
            if "://" in line[: match.start()]:
                in_urls.add(match["name"])
    assert in_urls, "the service URLs should take their passwords from .env"
    for name in in_urls:
        # Written into postgresql://, nats:// and redis:// URLs unescaped.
        assert re.fullmatch(r"[A-Za-z0-9._~-]+", example[name][0]), f"{name} is not URL-safe"


def test_every_variable_in_env_example_has_a_comment() -> None:
    for name, (_, comment) in read_env_example().items():
        assert comment.startswith("#") and len(comment) > 2, f"{name} has no comment above it"


@pytest.mark.parametrize("settings_cls", SETTINGS_CLASSES, ids=lambda cls: cls.__name__)
def test_env_example_values_are_the_code_defaults(
    settings_cls: type[BaseSettings], clean_environment: pytest.MonkeyPatch
) -> None:
    defaults = settings_cls().model_dump()
    for name, (value, _) in read_env_example().items():
        # An empty value documents a setting that is unset (or empty) by default.
        if name in env_names(settings_cls) and value:
            clean_environment.setenv(name, value)
    documented = settings_cls().model_dump()
    assert documented == defaults
