"""The RateLimit fields' parser (the service's real headers are read in test_usage.py)."""

from __future__ import annotations

import pytest
from tessera_client import Quota, RateLimit


def test_the_usage_apis_fields() -> None:
    parsed = RateLimit.from_headers({
        "ratelimit-policy": '"api_calls";q=500;w=2592000, "rate_per_minute";q=60;w=60',
        "ratelimit": '"api_calls";r=497;t=1814400, "rate_per_minute";r=59;t=42',
    })  # fmt: skip
    assert parsed["api_calls"] == Quota("api_calls", 500, 2592000, 497, 1814400)
    assert parsed["rate_per_minute"] == Quota("rate_per_minute", 60, 60, 59, 42)


@pytest.mark.parametrize(
    ("policy", "state", "expected"),
    [
        pytest.param(None, None, {}, id="absent"),
        pytest.param("", "", {}, id="empty"),
        pytest.param('"a,b;c";q=1', '"a,b;c";r=0', {"a,b;c": Quota("a,b;c", 1, None, 0)},
                     id="separators-inside-a-string"),
        pytest.param('"say \\"hi\\"";q=2', None, {'say "hi"': Quota('say "hi"', 2)},
                     id="escaped-quote"),
        pytest.param("tok;q=3;w=9", None, {"tok": Quota("tok", 3, 9)}, id="token-name"),
        pytest.param('"x";q=1;junk;w=oops, "y";q=2', None,
                     {"x": Quota("x", 1), "y": Quota("y", 2)}, id="bad-params-skipped"),
        pytest.param(None, '"only";r=4;t=5', {"only": Quota("only", None, None, 4, 5)},
                     id="state-without-policy"),
    ],
)  # fmt: skip
def test_members(policy: str | None, state: str | None, expected: dict[str, Quota]) -> None:
    headers = {
        k: v for k, v in (("ratelimit-policy", policy), ("ratelimit", state)) if v is not None
    }
    parsed = RateLimit.from_headers(headers)
    assert parsed.quotas == expected
    assert bool(parsed) == bool(expected)
