"""The RateLimit fields (draft-ietf-httpapi-ratelimit-headers) the usage API sends:

    RateLimit-Policy: "api_calls";q=500;w=2592000, "rate_per_minute";q=60;w=60
    RateLimit: "api_calls";r=497;t=1814400, "rate_per_minute";r=59;t=42

One item per limited feature (and `rate_per_minute` for the tier's rate). Only the part of
RFC 8941 these fields use is parsed: a list of strings or tokens with integer parameters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    """One item: `limit` (q) per `window` seconds (w); `remaining` (r) and `reset` (t, the
    seconds until it resets) when the `RateLimit` field named it."""

    name: str
    limit: int | None = None
    window: int | None = None
    remaining: int | None = None
    reset: int | None = None


@dataclass(frozen=True)
class RateLimit:
    """The quotas of one answer, by name (the feature, or `rate_per_minute`). Empty when
    the answer carried neither field (an unlimited feature with no rate, or no meter).

    Parsed on first use: a caller that never looks pays nothing for it."""

    policy: str | None = None
    state: str | None = None

    @functools.cached_property
    def quotas(self) -> dict[str, Quota]:
        items: dict[str, dict[str, int]] = {}
        for name, params in _items(self.policy or ""):
            items.setdefault(name, {}).update({k: v for k, v in params.items() if k in "qw"})
        for name, params in _items(self.state or ""):
            items.setdefault(name, {}).update({k: v for k, v in params.items() if k in "rt"})
        return {
            name: Quota(name, p.get("q"), p.get("w"), p.get("r"), p.get("t"))
            for name, p in items.items()
        }

    def __getitem__(self, name: str) -> Quota:
        return self.quotas[name]

    def __contains__(self, name: object) -> bool:
        return name in self.quotas

    def __bool__(self) -> bool:
        return bool(self.quotas)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        return cls(headers.get("ratelimit-policy"), headers.get("ratelimit"))


# A list member: a string (which may hold `,` or `;`) or a token, then `;key=value`
# parameters, up to the next `,`.
_MEMBER = re.compile(
    r'\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z*][!#$%&\'*+.^_`|~0-9A-Za-z:/-]*))([^,]*)(?:,|$)'
)
_PARAM = re.compile(r";\s*([a-z*][a-z0-9_.*-]*)=(-?\d+)")


def _items(value: str) -> list[tuple[str, dict[str, int]]]:
    """`"a";q=1;w=2, b;q=3` → [("a", {"q": 1, "w": 2}), ("b", {"q": 3})]; a malformed
    member is skipped rather than failing the call it came with."""
    out: list[tuple[str, dict[str, int]]] = []
    for match in _MEMBER.finditer(value):
        quoted, token, params = match.groups()
        name = quoted.replace('\\"', '"').replace("\\\\", "\\") if quoted is not None else token
        if name:
            out.append((name, {k: int(v) for k, v in _PARAM.findall(params)}))
    return out
