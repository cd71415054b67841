"""What production accepts as a secret (docs/operations.md, "Secrets in production").

With `TESSERA_ENV=production` every service refuses to start, with one line naming each
variable, when a secret is

- a placeholder: a value `.env.example` ships, the code's own dev default, or anything that
  says it is one (`change-me`, `dev-only`, `do_not_use`, ...), also inside base64;
- too short or too regular for its purpose (`SecretRule`): the estimate is the value's
  Shannon entropy over its own characters times its length, scaled down by how often its
  3-character runs repeat: about what a random value of that alphabet carries, and far
  less for words, repeats and patterns (`estimated_bits`);
- of the wrong kind: a webhook secret that is not `whsec_...`, a Stripe key that is not
  `sk_...`/`rk_...`;
- a password inside a NATS, Redis or Postgres URL that fails the same tests (a NATS URL's
  lone user name is its token and is held to the same rule);
- a NATS, Redis or Postgres URL that is the code's own default, or that carries no password
  at all, unless `TESSERA_ALLOW_PASSWORDLESS_URLS=true` says the servers authenticate
  clients another way (socket, IAM, mTLS); the code's defaults are refused even then.

The values of `.env.example` are listed here (the image does not ship that file);
tests/test_production_secrets.py reads the file and proves that each one is refused.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import AnyUrl, NatsDsn, PostgresDsn

from tessera.shared.settings import ConfigurationError, Environment, InfraSettings

# Every secret value `.env.example` ships (its first section, and the dev defaults it
# documents for each service). Placeholders that the markers below would also catch are
# listed all the same: this list is what the test checks against the file.
ENV_EXAMPLE_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "change-me-postgres",
        "change-me-auth",
        "change-me-billing",
        "change-me-licensing",
        "change-me-webhooks",
        "change-me-nats",
        "change-me-redis",
        "whsec_change-me",
        "sk_test_change-me",
        "change-me-auth-secret-key-at-least-32-characters",
        "change-me-auth-key-encryption-key-32-characters",
        "Y2hhbmdlLW1lLWNoYW5nZS1tZS1jaGFuZ2UtbWUtISE=",
        "Y2hhbmdlLW1lLWNoYW5nZS1tZS13ZWJob29rcy1rZWs=",
        "change-me-portal-secret-key-at-least-32-characters",
        "whsec_tessera_dev_only_do_not_use_in_production",
        "dev-only-auth-secret-key-change-me-0000000000",
        "dev-only-auth-key-encryption-key-change-me-00",
        "dGVzc2VyYS1kZXYtb25seS1saWNlbnNpbmcta2VrISE=",
        "dGVzc2VyYS1kZXYtb25seS13ZWJob29rcy1rZWshISE=",
        "dev-only-portal-secret-key-change-me-00000000",
    }
)

# Words that only a placeholder contains (compared in lower case, '_' read as '-').
PLACEHOLDER_MARKERS: tuple[str, ...] = (
    "change-me",
    "changeme",
    "dev-only",
    "do-not-use",
    "placeholder",
    "replace-me",
    "not-a-secret",
)


@dataclass(frozen=True)
class SecretRule:
    """What a secret for one purpose must be."""

    purpose: str
    min_length: int
    min_bits: float
    # The value must start with one of these; the length and entropy count what follows.
    prefixes: tuple[str, ...] = ()


# HMAC keys and key-encryption keys given as text (auth, portal): 32+ characters.
KEY = SecretRule("key", min_length=32, min_bits=100)
# Stripe's webhook signing secrets: whsec_ and 32+ random characters.
WEBHOOK_SECRET = SecretRule("webhook secret", min_length=24, min_bits=100, prefixes=("whsec_",))
# Stripe API keys (secret or restricted).
STRIPE_KEY = SecretRule(
    "Stripe key",
    min_length=24,
    min_bits=100,
    prefixes=("sk_live_", "rk_live_", "sk_test_", "rk_test_"),
)
# Passwords of Postgres roles, the NATS user and Redis, inside their URLs.
PASSWORD = SecretRule("password", min_length=16, min_bits=64)
# Raw key bytes (licensing's 32-byte key-encryption key, after base64).
RAW_KEY_MIN_BITS = 128.0

LIVE_PREFIXES = ("sk_live_", "rk_live_")


def estimated_bits(value: str | bytes) -> float:
    """Shannon entropy of the value's own symbol frequencies, times its length, scaled by
    the share of its 3-symbol runs that are distinct (so a repeated word or pattern, whose
    symbols alone look varied, counts for what it is)."""
    if not value:
        return 0.0
    counts = Counter(value)
    n = len(value)
    bits = -sum(c / n * math.log2(c / n) for c in counts.values()) * n
    runs = [value[i : i + 3] for i in range(n - 2)]
    return bits * (len(set(runs)) / len(runs)) if runs else bits


def looks_like_placeholder(value: str) -> bool:
    text = value.lower().replace("_", "-")
    if any(marker in text for marker in PLACEHOLDER_MARKERS):
        return True
    try:
        decoded = base64.b64decode(value, validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return False
    return decoded != value and looks_like_placeholder(decoded)


def weakness(value: str, rule: SecretRule, refused: Iterable[str] = ()) -> str | None:
    """Why `value` is no secret for `rule.purpose`, or None when it will do."""
    if not value:
        return f"a {rule.purpose} is required in production"
    if value in ENV_EXAMPLE_PLACEHOLDERS or value in set(refused) or looks_like_placeholder(value):
        return "a placeholder (from .env.example or a dev default) is refused in production"
    body = value
    if rule.prefixes:
        prefix = next((p for p in rule.prefixes if value.startswith(p)), None)
        if prefix is None:
            return f"a {rule.purpose} must start with {' or '.join(rule.prefixes)}"
        body = value[len(prefix) :]
    if len(body) < rule.min_length:
        return f"too short for a {rule.purpose} (at least {rule.min_length} characters)"
    if estimated_bits(body) < rule.min_bits:
        return f"too little entropy for a {rule.purpose}; generate a random one"
    return None


def raw_key_weakness(encoded: str, raw: bytes, refused: Iterable[str] = ()) -> str | None:
    """Why a base64 key is no key: a placeholder, or bytes too regular to be random."""
    if encoded in ENV_EXAMPLE_PLACEHOLDERS or encoded in set(refused):
        return "a placeholder (from .env.example or a dev default) is refused in production"
    if looks_like_placeholder(encoded):
        return "a placeholder is refused in production"
    if estimated_bits(raw) < RAW_KEY_MIN_BITS:
        return "too little entropy for a key; generate 32 random bytes"
    return None


def url_passwords(url: AnyUrl | PostgresDsn | NatsDsn) -> list[str]:
    """The passwords inside a URL (one per host of a multi-host URL). A NATS URL with a user
    name and no password (`nats://TOKEN@host`) authenticates with that token: it counts."""
    if isinstance(url, AnyUrl):
        hosts = [{"username": url.username, "password": url.password}]
    else:
        hosts = [{"username": h["username"], "password": h["password"]} for h in url.hosts()]
    nats = url.scheme in ("nats", "tls")
    found = [h["password"] or (h["username"] if nats else None) for h in hosts]
    return [p for p in found if p]


@dataclass
class SecretAudit:
    """Collects every refusal, then raises them as one line (`invalid configuration: ...`)."""

    problems: list[str] = field(default_factory=list)
    # TESSERA_ALLOW_PASSWORDLESS_URLS: a URL without a password is the operator's choice.
    allow_passwordless_urls: bool = False

    def secret(
        self, variable: str, value: str, rule: SecretRule, refused: Iterable[str] = ()
    ) -> None:
        problem = weakness(value, rule, refused)
        if problem:
            self.problems.append(f"{variable}: {problem}")

    def raw_key(self, variable: str, encoded: str, raw: bytes, refused: Iterable[str] = ()) -> None:
        problem = raw_key_weakness(encoded, raw, refused)
        if problem:
            self.problems.append(f"{variable}: {problem}")

    def url(
        self, variable: str, url: AnyUrl | PostgresDsn | NatsDsn, code_default: object = None
    ) -> None:
        """Not the code's default URL; a password, and a real one (a URL without one only
        with TESSERA_ALLOW_PASSWORDLESS_URLS=true: the server then authenticates the client
        some other way, e.g. a Unix socket, IAM or a TLS certificate)."""
        if code_default is not None and str(url) == str(code_default):
            self.problems.append(
                f"{variable}: the code's default URL is refused in production; set it"
            )
            return
        passwords = url_passwords(url)
        if not passwords and not self.allow_passwordless_urls:
            self.problems.append(
                f"{variable}: a URL without a password is refused in production (set "
                "TESSERA_ALLOW_PASSWORDLESS_URLS=true if the server authenticates clients "
                "another way: socket, IAM, mTLS)"
            )
            return
        for password in passwords:
            problem = weakness(password, PASSWORD)
            if problem:
                self.problems.append(f"{variable}: the password in the URL: {problem}")
                return

    def infra(self, infra: InfraSettings) -> None:
        fields = InfraSettings.model_fields
        self.url("TESSERA_NATS_URL", infra.nats_url, fields["nats_url"].default)
        self.url("TESSERA_REDIS_URL", infra.redis_url, fields["redis_url"].default)

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigurationError("invalid configuration: " + "; ".join(self.problems))


def production_audit(infra: InfraSettings) -> SecretAudit | None:
    """A new audit with the shared URLs checked, in production; None elsewhere."""
    if infra.env != Environment.PRODUCTION:
        return None
    audit = SecretAudit(allow_passwordless_urls=infra.allow_passwordless_urls)
    audit.infra(infra)
    return audit
