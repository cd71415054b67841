"""Stripe's wire format: bracket-notation form bodies in, Stripe's error shape out, ids with
Stripe's prefixes, list objects and `expand[]`."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Obj = dict[str, Any]

_ALPHABET = string.ascii_letters + string.digits
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
# Free-form maps whose keys may look like list indexes: never turned into lists.
_MAPS = {"metadata"}


class StripeApiError(Exception):
    """An error answered in Stripe's shape: `{"error": {type, code, message, param}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        keep: bool = False,
    ) -> None:
        super().__init__(message)
        # `keep`: what the request did stands although it answers an error (a declined
        # payment is recorded, with its events); otherwise the request changes nothing.
        self.keep = keep
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> Obj:
        error: Obj = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def missing(kind: str, object_id: str, param: str = "id") -> StripeApiError:
    return StripeApiError(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def invalid(param: str, message: str, code: str = "parameter_invalid_empty") -> StripeApiError:
    return StripeApiError(400, message, code=code, param=param)


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def parse_form(pairs: Iterable[tuple[str, str]]) -> Obj:
    """`a[b][0][c]=v` into `{"a": {"b": [{"c": "v"}]}}`: what stripe-python's encoder sends
    (indexed lists), and `a[]=v` (what other clients and curl send)."""
    root: Obj = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise invalid(key, f"Invalid parameter name: {key}", "parameter_unknown")
        parts = [match.group(1), *_PART.findall(match.group(2))]
        node = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            name = str(len(node)) if part == "" else part
            if last:
                node[name] = value
                break
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                raise invalid(key, f"Invalid value for {key}: mixed scalar and hash")
            node = child
    result: Obj = _lists(root, "")
    return result


def _lists(node: Obj, name: str) -> Any:
    converted = {
        key: _lists(value, key) if isinstance(value, dict) else value for key, value in node.items()
    }
    if name not in _MAPS and converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


class Params:
    """A request's parameters with typed reads whose errors name the param as Stripe does
    (`line_items[0][price]`)."""

    def __init__(self, data: Obj, prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}[{key}]" if self.prefix else key

    def has(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise invalid(
                    self.name(key),
                    f"Missing required param: {self.name(key)}.",
                    "parameter_missing",
                )
            return None
        if not isinstance(value, str):
            raise invalid(
                self.name(key), f"Invalid string: {self.name(key)}", "parameter_invalid_string"
            )
        return value

    def required(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def choice(self, key: str, options: Sequence[str], *, required: bool = False) -> str | None:
        value = self.text(key, required=required)
        if value is not None and value not in options:
            raise invalid(
                self.name(key),
                f"Invalid {self.name(key)}: must be one of {', '.join(options)}",
                "parameter_invalid_string",
            )
        return value

    def integer(self, key: str, *, required: bool = False, minimum: int = 0) -> int | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        if not re.fullmatch(r"-?\d{1,18}", value) or int(value) < minimum:
            raise invalid(self.name(key), f"Invalid integer: {value}", "parameter_invalid_integer")
        return int(value)

    def boolean(self, key: str) -> bool | None:
        value = self.text(key)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise invalid(self.name(key), f"Invalid boolean: {value}", "parameter_invalid_string")
        return value == "true"

    def sub(self, key: str) -> Params | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise invalid(
                self.name(key), f"Invalid hash: {self.name(key)}", "parameter_invalid_string"
            )
        return Params(value, self.name(key))

    def items(self, key: str) -> list[Params]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise invalid(
                self.name(key), f"Invalid array: {self.name(key)}", "parameter_invalid_string"
            )
        return [Params(v, f"{self.name(key)}[{i}]") for i, v in enumerate(value)]

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid(
                self.name(key), f"Invalid array: {self.name(key)}", "parameter_invalid_string"
            )
        return list(value)

    def metadata(self, current: dict[str, str] | None = None) -> dict[str, str]:
        """Stripe's metadata update: keys merge in, an empty value unsets a key, and
        `metadata=""` unsets them all."""
        result = dict(current or {})
        value = self.data.get("metadata")
        if value is None:
            return result
        if value == "":
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise invalid(self.name("metadata"), "Invalid metadata: must be a hash of strings")
        for key, item in value.items():
            if len(key) > 40 or len(item) > 500:
                raise invalid(
                    f"{self.name('metadata')}[{key}]",
                    "Metadata keys are at most 40 characters and values at most 500.",
                    "parameter_invalid_string",
                )
            if item == "":
                result.pop(key, None)
            else:
                result[key] = item
        if len(result) > 50:
            raise invalid(self.name("metadata"), "Metadata can have at most 50 keys.")
        return result


def check_known(params: Params, accepted: Iterable[str]) -> None:
    """Stripe refuses what it does not know; so does the stand-in (it keeps clients honest)."""
    known = set(accepted) | ({"expand"} if not params.prefix else set())
    for key in params.data:
        if key not in known:
            name = params.name(key)
            raise StripeApiError(
                400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )


def page(
    objects: Sequence[Obj],
    params: Params,
    url: str,
    *,
    filtered: Callable[[Obj], bool] | None = None,
) -> Obj:
    """A list object, newest first, with `limit` (1..100, default 10), `starting_after`
    and `ending_before` as Stripe pages, and the `created` filter (a time, or
    `created[gt|gte|lt|lte]`)."""
    # Newest first; among objects of the same second, the later made first.
    order = sorted(
        enumerate(objects), key=lambda io: (io[1].get("created", 0), io[0]), reverse=True
    )
    within = _created(params)
    rows = [
        o for _, o in order if within(o.get("created", 0)) and (filtered is None or filtered(o))
    ]
    limit = params.integer("limit", minimum=1)
    if limit is None:
        limit = 10
    if limit > 100:
        raise invalid(
            "limit", "This value must be less than or equal to 100.", "parameter_invalid_integer"
        )
    after = params.text("starting_after")
    before = params.text("ending_before")
    ids = [o["id"] for o in rows]
    if after is not None:
        if after not in ids:
            raise missing("object", after, "starting_after")
        rest = rows[ids.index(after) + 1 :]
        data, more = rest[:limit], len(rest) > limit
    elif before is not None:
        if before not in ids:
            raise missing("object", before, "ending_before")
        newer = rows[: ids.index(before)]
        data, more = newer[-limit:], len(newer) > limit
    else:
        data, more = rows[:limit], len(rows) > limit
    return {"object": "list", "data": data, "has_more": more, "url": url}


_BOUNDS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda at, bound: at > bound,
    "gte": lambda at, bound: at >= bound,
    "lt": lambda at, bound: at < bound,
    "lte": lambda at, bound: at <= bound,
}


def _created(params: Params) -> Callable[[int], bool]:
    if not params.has("created"):
        return lambda at: True
    if isinstance(params.data["created"], str):
        exact = params.integer("created")
        return lambda at: at == exact
    bounds = params.sub("created")
    assert bounds is not None
    check_known(bounds, _BOUNDS)
    limits = [(_BOUNDS[key], bounds.integer(key)) for key in bounds.data]
    return lambda at: all(test(at, bound) for test, bound in limits if bound is not None)


def expand(obj: Any, paths: Iterable[str], lookup: Callable[[str], Obj | None]) -> Any:
    """Replace the ids at each dotted path by their objects (`customer`,
    `data.subscription`, `subscription.latest_invoice`), as `expand[]` asks."""
    for path in paths:
        obj = _expand(obj, path.split("."), lookup)
    return obj


def _expand(node: Any, parts: list[str], lookup: Callable[[str], Obj | None]) -> Any:
    if isinstance(node, list):
        return [_expand(item, parts, lookup) for item in node]
    if not isinstance(node, dict) or not parts:
        return node
    head, rest = parts[0], parts[1:]
    if head not in node:
        return node
    value = node[head]
    if isinstance(value, str) and (found := lookup(value)) is not None:
        value = found
    return {**node, head: _expand(value, rest, lookup) if rest else value}
