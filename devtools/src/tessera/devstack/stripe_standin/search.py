"""Search (`/v1/<resource>/search?query=...`) in Stripe's query language: clauses
`field:value` (exact), `field~value` (substring), `field>value` (and `<`, `>=`, `<=`),
`metadata['key']:value`, a leading `-` to negate, joined by `AND` or by `OR` (not both).
Results come as a `search_result` paged with `page`/`next_page`."""

from __future__ import annotations

import re
from collections.abc import Callable

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.wire import Obj, StripeApiError, invalid

FIELDS = {
    "product": ("active", "description", "name", "shippable", "url", "created"),
    "price": ("active", "currency", "lookup_key", "product", "type", "created"),
    "customer": ("email", "name", "phone", "created"),
    "subscription": ("status", "created"),
    "invoice": ("currency", "customer", "number", "status", "total", "created"),
    "charge": ("amount", "currency", "customer", "disputed", "refunded", "status", "created"),
    "payment_intent": ("amount", "currency", "customer", "status", "created"),
}
_CLAUSE = re.compile(
    r"""^(?P<neg>-)?(?:metadata\[(?P<q>['"])(?P<key>[^'"]+)(?P=q)\]|(?P<field>[a-z_]+))"""
    r"""(?P<op>:|~|>=|<=|>|<)(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)"|(?P<bare>\S+))$"""
)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _test(op: str, actual: object, wanted: str) -> bool:
    if op == ":":
        return _text(actual).lower() == wanted.lower()
    if op == "~":
        return wanted.lower() in _text(actual).lower()
    if not isinstance(actual, int) or not re.fullmatch(r"-?\d+", wanted):
        return False
    bound = int(wanted)
    return {">": actual > bound, "<": actual < bound, ">=": actual >= bound, "<=": actual <= bound}[
        op
    ]


def _clause(kind: str, text: str) -> Callable[[Obj], bool]:
    match = _CLAUSE.match(text)
    if match is None:
        raise invalid(
            "query", f"Invalid search query: could not parse `{text}`.", "parameter_invalid_string"
        )
    wanted = next(v for v in (match["single"], match["double"], match["bare"]) if v is not None)
    op, key, field = match["op"], match["key"], match["field"]
    if field is not None and field not in FIELDS[kind]:
        raise invalid(
            "query",
            f"Field `{field}` is an unsupported search field for resource `{kind}s`.",
            "parameter_invalid_string",
        )
    if op == "~" and len(wanted) < 3:
        raise invalid(
            "query", "A substring search needs at least 3 characters.", "parameter_invalid_string"
        )
    negate = match["neg"] is not None

    def test(obj: Obj) -> bool:
        actual = obj["metadata"].get(key) if key is not None else obj.get(field or "")
        return _test(op, actual, wanted) != negate

    return test


def _matcher(kind: str, query: str) -> Callable[[Obj], bool]:
    parts = re.split(r"\s+(AND|OR)\s+", query.strip())
    clauses = [_clause(kind, part) for part in parts[::2]]
    joins = set(parts[1::2])
    if len(joins) > 1:
        raise invalid(
            "query", "A search query cannot combine AND and OR.", "parameter_invalid_string"
        )
    combine = any if joins == {"OR"} else all
    return lambda obj: combine(clause(obj) for clause in clauses)


def searcher(kind: str, url: str) -> Callable[[Call], Obj]:
    def search(call: Call) -> Obj:
        params = call.params
        matches = _matcher(kind, params.required("query"))
        limit = params.integer("limit", minimum=1) or 10
        if limit > 100:
            raise invalid(
                "limit",
                "This value must be less than or equal to 100.",
                "parameter_invalid_integer",
            )
        token = params.text("page")
        start = 0
        if token is not None:
            if not re.fullmatch(r"page_\d+", token):
                raise StripeApiError(400, f"Invalid page: {token}", param="page")
            start = int(token.removeprefix("page_"))
        found = [o for o in reversed(call.store.all(call.account, kind)) if matches(o)]
        data = found[start : start + limit]
        more = start + limit < len(found)
        return {
            "object": "search_result",
            "data": data,
            "has_more": more,
            "next_page": f"page_{start + limit}" if more else None,
            "url": url,
        }

    return search


ENDPOINTS = [
    Endpoint("GET", f"/v1/{kind}s/search", searcher(kind, f"/v1/{kind}s/search"), ("query", "page"))
    for kind in FIELDS
]
