"""With TESSERA_ENV=production, every service refuses to start on a secret that is a
placeholder (each one `.env.example` ships, read from the file here), a dev default, too
short or too regular for its purpose, or a test-mode Stripe key where live mode is
configured; the refusal is one line naming the variable. Dev and test start on defaults."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tessera.auth.app import create_app as auth_app
from tessera.billing.app import create_app as billing_app
from tessera.licensing.app import create_app as licensing_app
from tessera.portal.app import create_app as portal_app
from tessera.shared.secret_policy import ENV_EXAMPLE_PLACEHOLDERS
from tessera.shared.settings import ConfigurationError
from tessera.webhooks.app import create_app as webhooks_app

REPO = Path(__file__).resolve().parents[1]
APPS: dict[str, Callable[[], Any]] = {
    "auth": auth_app,
    "billing": billing_app,
    "licensing": licensing_app,
    "portal": portal_app,
    "webhooks": webhooks_app,
}
DB_URL = "postgresql://{user}:{password}@127.0.0.1:5432/{user}"


def strong_password() -> str:
    return secrets.token_urlsafe(24)


def strong_environment() -> dict[str, str]:
    """A production environment every service accepts."""
    return {
        "TESSERA_ENV": "production",
        "TESSERA_NATS_URL": f"nats://tessera:{strong_password()}@127.0.0.1:4222",
        "TESSERA_REDIS_URL": f"redis://:{strong_password()}@127.0.0.1:6379/0",
        "TESSERA_AUTH_SECRET_KEY": secrets.token_urlsafe(48),
        "TESSERA_AUTH_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(48),
        "TESSERA_AUTH_DATABASE_URL": DB_URL.format(user="auth", password=strong_password()),
        "TESSERA_BILLING_STRIPE_SECRET_KEY": "sk_test_" + secrets.token_urlsafe(48),
        "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS": "whsec_" + secrets.token_urlsafe(32),
        "TESSERA_BILLING_DATABASE_URL": DB_URL.format(user="billing", password=strong_password()),
        "TESSERA_LICENSING_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "TESSERA_LICENSING_DATABASE_URL": DB_URL.format(
            user="licensing", password=strong_password()
        ),
        "TESSERA_PORTAL_SECRET_KEY": secrets.token_urlsafe(48),
        "TESSERA_WEBHOOKS_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "TESSERA_WEBHOOKS_DATABASE_URL": DB_URL.format(user="webhooks", password=strong_password()),
    }


def read_env_example() -> tuple[dict[str, str], dict[str, str]]:
    """(the compose section's values, every other TESSERA_* value) of .env.example."""
    compose: dict[str, str] = {}
    services: dict[str, str] = {}
    section = 0
    for line in (REPO / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.startswith("# ---"):
            section += 1
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            (compose if section == 1 else services)[key] = value

    return compose, services


# Where each compose secret of .env.example ends up: (service, variable, template).
EVERY = ("auth", "billing", "licensing", "portal", "webhooks")
PLACES: dict[str, list[tuple[str, str, str]]] = {
    "POSTGRES_PASSWORD": [
        (s, f"TESSERA_{s.upper()}_DATABASE_URL", DB_URL.replace("{user}", s))
        for s in ("auth", "billing", "licensing", "webhooks")
    ],
    "AUTH_DB_PASSWORD": [("auth", "TESSERA_AUTH_DATABASE_URL", DB_URL.replace("{user}", "auth"))],
    "BILLING_DB_PASSWORD": [
        ("billing", "TESSERA_BILLING_DATABASE_URL", DB_URL.replace("{user}", "billing"))
    ],
    "LICENSING_DB_PASSWORD": [
        ("licensing", "TESSERA_LICENSING_DATABASE_URL", DB_URL.replace("{user}", "licensing"))
    ],
    "WEBHOOKS_DB_PASSWORD": [
        ("webhooks", "TESSERA_WEBHOOKS_DATABASE_URL", DB_URL.replace("{user}", "webhooks"))
    ],
    "NATS_PASSWORD": [
        (s, "TESSERA_NATS_URL", "nats://tessera:{password}@nats:4222") for s in EVERY
    ],
    "REDIS_PASSWORD": [(s, "TESSERA_REDIS_URL", "redis://:{password}@redis:6379/0") for s in EVERY],
    "STRIPE_WEBHOOK_SECRETS": [("billing", "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS", "{password}")],
    "STRIPE_SECRET_KEY": [("billing", "TESSERA_BILLING_STRIPE_SECRET_KEY", "{password}")],
    "AUTH_SECRET_KEY": [("auth", "TESSERA_AUTH_SECRET_KEY", "{password}")],
    "AUTH_KEY_ENCRYPTION_KEY": [("auth", "TESSERA_AUTH_KEY_ENCRYPTION_KEY", "{password}")],
    "LICENSING_KEY_ENCRYPTION_KEY": [
        ("licensing", "TESSERA_LICENSING_KEY_ENCRYPTION_KEY", "{password}")
    ],
    "PORTAL_SECRET_KEY": [("portal", "TESSERA_PORTAL_SECRET_KEY", "{password}")],
    "WEBHOOKS_KEY_ENCRYPTION_KEY": [
        ("webhooks", "TESSERA_WEBHOOKS_KEY_ENCRYPTION_KEY", "{password}")
    ],
}
NOT_SECRETS = {"AUTH_BOOTSTRAP_ADMINS"}


def placeholder_cases() -> list[tuple[str, str, str, str]]:
    """(service, variable, value, where it came from) for every placeholder of the file."""
    compose, services = read_env_example()
    cases = []
    for key, value in sorted(compose.items()):
        for service, variable, template in PLACES.get(key, []):
            cases.append((service, variable, template.format(password=value), key))
    secret_variables = set(strong_environment()) - {"TESSERA_ENV"}
    for variable, value in sorted(services.items()):
        if variable in secret_variables and "://" not in value:
            for service in EVERY:
                if variable.startswith(f"TESSERA_{service.upper()}_") or variable in (
                    "TESSERA_NATS_URL",
                    "TESSERA_REDIS_URL",
                ):
                    cases.append((service, variable, value, variable))
    return cases


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No TESSERA_* variable of the caller's shell leaks in."""
    for name in list(os.environ):
        if name.upper().startswith("TESSERA_"):
            monkeypatch.delenv(name)
    return monkeypatch


def start(monkeypatch: pytest.MonkeyPatch, service: str, **overrides: str) -> Any:
    for key, value in {**strong_environment(), **overrides}.items():
        monkeypatch.setenv(key, value)
    return APPS[service]()


def refusal(monkeypatch: pytest.MonkeyPatch, service: str, variable: str, value: str) -> str:
    with pytest.raises(ConfigurationError) as raised:
        start(monkeypatch, service, **{variable: value})
    message = str(raised.value)
    assert message.startswith("invalid configuration: ")
    assert "\n" not in message
    return message


def test_every_compose_secret_of_env_example_is_placed_and_listed_in_code() -> None:
    compose, services = read_env_example()
    assert set(compose) == set(PLACES) | NOT_SECRETS, "a new .env.example secret needs a place"
    for key in PLACES:
        assert compose[key] in ENV_EXAMPLE_PLACEHOLDERS, key
    for variable in (set(strong_environment()) - {"TESSERA_ENV"}) & set(services):
        value = services[variable]
        assert "://" in value or not value or value in ENV_EXAMPLE_PLACEHOLDERS, variable


@pytest.mark.parametrize(
    ("service", "variable", "value", "source"),
    placeholder_cases(),
    ids=lambda v: str(v) if "://" not in str(v) and len(str(v)) < 40 else "",
)
def test_each_placeholder_of_env_example_is_refused_in_production(
    environment: pytest.MonkeyPatch, service: str, variable: str, value: str, source: str
) -> None:
    message = refusal(environment, service, variable, value)
    assert f"{variable}:" in message
    # the refusal names the variable, never the value
    secret = urlsplit(value).password if "://" in value else value
    if secret:
        assert secret not in message


@pytest.mark.parametrize("service", EVERY)
def test_production_starts_with_real_secrets(environment: pytest.MonkeyPatch, service: str) -> None:
    assert start(environment, service) is not None


@pytest.mark.parametrize("env", ["dev", "test"])
@pytest.mark.parametrize("service", EVERY)
def test_dev_and_test_start_on_the_defaults(
    environment: pytest.MonkeyPatch, service: str, env: str
) -> None:
    environment.setenv("TESSERA_ENV", env)
    assert APPS[service]() is not None


# Fixed strong values, not random ones: every xdist worker must collect the same test ids.
@pytest.mark.parametrize(
    ("service", "variable", "value", "reason"),
    [
        ("auth", "TESSERA_AUTH_SECRET_KEY", "a" * 64, "too little entropy"),
        ("auth", "TESSERA_AUTH_SECRET_KEY", "password" * 6, "too little entropy"),
        ("auth", "TESSERA_AUTH_KEY_ENCRYPTION_KEY", "0123456789abcdef" * 3, "too little entropy"),
        ("portal", "TESSERA_PORTAL_SECRET_KEY", "abcd" * 12, "too little entropy"),
        (
            "licensing",
            "TESSERA_LICENSING_KEY_ENCRYPTION_KEY",
            base64.b64encode(b"own-key-of-thirty-two-bytes-ok!!").decode(),
            "too little entropy",
        ),
        (
            "webhooks",
            "TESSERA_WEBHOOKS_KEY_ENCRYPTION_KEY",
            base64.b64encode(b"own-key-of-thirty-two-bytes-ok!!").decode(),
            "too little entropy",
        ),
        ("billing", "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS", "whsec_short", "too short"),
        (
            "billing",
            "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS",
            "whsec_" + "ab" * 20,
            "too little entropy",
        ),
        (
            "billing",
            "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS",
            "-ZkCXFf-3ipLaDsDOh4wbEHUGnGbYLoqT_5PjpUrZDI",
            "must start with whsec_",
        ),
        ("billing", "TESSERA_BILLING_STRIPE_SECRET_KEY", "sk_test_123", "too short"),
        (
            "billing",
            "TESSERA_BILLING_STRIPE_SECRET_KEY",
            "pk_live_qTg2_DMGklw_0TcZ28lTFPI8uZk2CBw3MgZCU9rHQaNMpt21hEYi7n-L9EBYB5H-",
            "must start with",
        ),
        ("billing", "TESSERA_BILLING_STRIPE_SECRET_KEY", "", "required in production"),
        (
            "billing",
            "TESSERA_BILLING_DATABASE_URL",
            "postgresql://billing:billing@127.0.0.1:5432/billing",
            "password in the URL: too short",
        ),
        ("licensing", "TESSERA_REDIS_URL", "redis://:hunter2hunter2hunter2@redis:6379/0", ""),
        ("portal", "TESSERA_NATS_URL", "nats://tessera:aaaaaaaaaaaaaaaaaaaa@nats:4222", ""),
    ],
)
def test_weak_secrets_are_refused_for_their_purpose(
    environment: pytest.MonkeyPatch, service: str, variable: str, value: str, reason: str
) -> None:
    message = refusal(environment, service, variable, value)
    assert f"{variable}: " in message
    assert reason in message


@pytest.mark.parametrize(
    ("service", "variable"),
    [
        ("portal", "TESSERA_NATS_URL"),
        ("portal", "TESSERA_REDIS_URL"),
        ("auth", "TESSERA_AUTH_DATABASE_URL"),
        ("billing", "TESSERA_BILLING_DATABASE_URL"),
        ("licensing", "TESSERA_LICENSING_DATABASE_URL"),
    ],
)
def test_the_code_default_url_is_refused_even_when_passwordless_urls_are_allowed(
    environment: pytest.MonkeyPatch, service: str, variable: str
) -> None:
    """A URL left unset (the code's own default) is a value from code: refused."""
    environment.setenv("TESSERA_ALLOW_PASSWORDLESS_URLS", "true")
    for key, value in strong_environment().items():
        environment.setenv(key, value)
    environment.delenv(variable)
    with pytest.raises(ConfigurationError) as raised:
        APPS[service]()
    assert f"{variable}: the code's default URL is refused in production" in str(raised.value)


PASSWORDLESS = [
    ("portal", "TESSERA_NATS_URL", "nats://nats.internal:4222"),
    ("portal", "TESSERA_REDIS_URL", "rediss://redis.internal:6380/0"),
    ("auth", "TESSERA_AUTH_DATABASE_URL", "postgresql://auth@db.internal:5432/auth"),
    ("billing", "TESSERA_BILLING_DATABASE_URL", "postgresql://billing@db.internal/billing"),
    ("licensing", "TESSERA_LICENSING_DATABASE_URL", "postgresql://licensing@db/licensing"),
]


@pytest.mark.parametrize(("service", "variable", "value"), PASSWORDLESS)
def test_a_passwordless_url_is_refused_unless_the_operator_opts_in(
    environment: pytest.MonkeyPatch, service: str, variable: str, value: str
) -> None:
    message = refusal(environment, service, variable, value)
    assert f"{variable}: a URL without a password is refused in production" in message
    assert "TESSERA_ALLOW_PASSWORDLESS_URLS=true" in message
    environment.setenv("TESSERA_ALLOW_PASSWORDLESS_URLS", "true")
    assert start(environment, service, **{variable: value}) is not None


def test_a_nats_token_counts_as_the_urls_password(environment: pytest.MonkeyPatch) -> None:
    token = secrets.token_urlsafe(24)
    assert start(environment, "portal", TESSERA_NATS_URL=f"nats://{token}@nats:4222") is not None
    message = refusal(environment, "portal", "TESSERA_NATS_URL", "nats://REPLACE_ME@nats:4222")
    assert "TESSERA_NATS_URL: the password in the URL: a placeholder" in message


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("REPLACE_ME", "placeholder"),
        ("", "required in production"),
        ("smtp-pass", "too short"),
        ("mailmailmailmailmail", "too little entropy"),
    ],
)
def test_the_smtp_password_is_checked_when_an_smtp_user_is_set(
    environment: pytest.MonkeyPatch, password: str, reason: str
) -> None:
    environment.setenv("TESSERA_AUTH_SMTP_USERNAME", "tessera-mailer")
    message = refusal(environment, "auth", "TESSERA_AUTH_SMTP_PASSWORD", password)
    assert "TESSERA_AUTH_SMTP_PASSWORD: " in message
    assert reason in message
    good = secrets.token_urlsafe(24)
    assert start(environment, "auth", TESSERA_AUTH_SMTP_PASSWORD=good) is not None
    # no SMTP authentication: no password wanted
    environment.setenv("TESSERA_AUTH_SMTP_USERNAME", "")
    assert start(environment, "auth", TESSERA_AUTH_SMTP_PASSWORD="") is not None


def test_a_weak_secret_among_rotated_webhook_secrets_is_refused(
    environment: pytest.MonkeyPatch,
) -> None:
    secrets_value = f"whsec_{secrets.token_urlsafe(32)},whsec_change-me"
    message = refusal(
        environment, "billing", "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS", secrets_value
    )
    assert "placeholder" in message


def test_a_test_mode_key_is_refused_where_live_mode_is_configured(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("TESSERA_BILLING_STRIPE_MODE", "")  # unset: a test key will do
    assert start(environment, "billing") is not None
    environment.setenv("TESSERA_BILLING_STRIPE_MODE", "live")
    message = refusal(
        environment,
        "billing",
        "TESSERA_BILLING_STRIPE_SECRET_KEY",
        "sk_test_" + secrets.token_urlsafe(48),
    )
    assert "TESSERA_BILLING_STRIPE_SECRET_KEY: a test-mode key is refused" in message
    live = "sk_live_" + secrets.token_urlsafe(48)
    assert start(environment, "billing", TESSERA_BILLING_STRIPE_SECRET_KEY=live) is not None
    # and a live key where the operator said test mode
    environment.setenv("TESSERA_BILLING_STRIPE_MODE", "test")
    message = refusal(environment, "billing", "TESSERA_BILLING_STRIPE_SECRET_KEY", live)
    assert "a live key is refused" in message


def test_production_talks_to_stripe_itself(environment: pytest.MonkeyPatch) -> None:
    for base in (
        "http://127.0.0.1:12111",
        "https://stripe.com.evil.example",
        "http://api.stripe.com",
    ):
        message = refusal(environment, "billing", "TESSERA_BILLING_STRIPE_API_BASE", base)
        assert "TESSERA_BILLING_STRIPE_API_BASE: production talks to Stripe itself" in message
    assert (
        start(environment, "billing", TESSERA_BILLING_STRIPE_API_BASE="https://api.stripe.com")
        is not None
    )


def test_several_problems_are_one_line_naming_each_variable(
    environment: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        start(
            environment,
            "auth",
            TESSERA_AUTH_SECRET_KEY="x" * 40,
            TESSERA_AUTH_KEY_ENCRYPTION_KEY="change-me-auth-key-encryption-key-32-characters",
        )
    message = str(raised.value)
    assert "\n" not in message
    assert "TESSERA_AUTH_SECRET_KEY:" in message
    assert "TESSERA_AUTH_KEY_ENCRYPTION_KEY:" in message


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        ("tessera-auth", "TESSERA_AUTH_SECRET_KEY"),
        ("tessera-billing", "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS"),
        ("tessera-licensing", "TESSERA_LICENSING_KEY_ENCRYPTION_KEY"),
        ("tessera-portal", "TESSERA_PORTAL_SECRET_KEY"),
        ("tessera-webhooks", "TESSERA_WEBHOOKS_KEY_ENCRYPTION_KEY"),
    ],
)
def test_the_cli_refuses_to_serve_with_a_placeholder(command: str, variable: str) -> None:
    compose, _ = read_env_example()
    placeholder = {
        "TESSERA_AUTH_SECRET_KEY": compose["AUTH_SECRET_KEY"],
        "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS": compose["STRIPE_WEBHOOK_SECRETS"],
        "TESSERA_LICENSING_KEY_ENCRYPTION_KEY": compose["LICENSING_KEY_ENCRYPTION_KEY"],
        "TESSERA_PORTAL_SECRET_KEY": compose["PORTAL_SECRET_KEY"],
        "TESSERA_WEBHOOKS_KEY_ENCRYPTION_KEY": compose["WEBHOOKS_KEY_ENCRYPTION_KEY"],
    }[variable]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TESSERA_")}
    env.update(strong_environment())
    env[variable] = placeholder
    executable = Path(sys.executable).parent / command
    done = subprocess.run(
        [str(executable), "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("invalid configuration: ")
    assert f"{variable}:" in lines[-1]
    assert "Traceback" not in done.stderr
