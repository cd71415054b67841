"""The RateLimit fields (draft-ietf-httpapi-ratelimit-headers) the usage API sends:

    RateLimit-Policy: "api_calls";q=500;w=2592000, "rate_per_minute";q=60;w=60
    RateLimit: "api_calls";r=497;t=1814400, "rate_per_minute";r=59;t=42

One item per limited feature (and `rate_per_minute` for the tier's rate). Only the part of
RFC 8941 these fields use is parsed: a list of strings or tokens with integer parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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
    the answer carried neither field (an unlimited feature with no rate, or no meter)."""

    quotas: dict[str, Quota] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Quota:
        return self.quotas[name]

    def __contains__(self, name: object) -> bool:
        return name in self.quotas

    def __bool__(self) -> bool:
        return bool(self.quotas)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        policy = headers.get("ratelimit-policy")
        state = headers.get("ratelimit")
        if not policy and not state:
            return cls()
        items: dict[str, dict[str, int]] = {}
        for name, params in _items(policy or ""):
            items.setdefault(name, {}).update({k: v for k, v in params.items() if k in "qw"})
        for name, params in _items(state or ""):
            items.setdefault(name, {}).update({k: v for k, v in params.items() if k in "rt"})
        return cls(
            {
                name: Quota(name, p.get("q"), p.get("w"), p.get("r"), p.get("t"))
                for name, p in items.items()
            }
        )


def _items(value: str) -> list[tuple[str, dict[str, int]]]:
    """`"a";q=1;w=2, b;q=3` → [("a", {"q": 1, "w": 2}), ("b", {"q": 3})]; a malformed
    member is skipped rather than failing the call it came with."""
    out: list[tuple[str, dict[str, int]]] = []
    for member in _split_outside_quotes(value, ","):
        parts = _split_outside_quotes(member, ";")
        if not parts:
            continue
        name = parts[0].strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if not name:
            continue
        params: dict[str, int] = {}
        for param in parts[1:]:
            key, _, raw = param.strip().partition("=")
            raw = raw.strip()
            if raw.lstrip("-").isdigit():
                params[key.strip()] = int(raw)
        out.append((name, params))
    return out


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]
