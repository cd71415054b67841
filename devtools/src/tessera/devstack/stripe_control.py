"""`./dev stripe ...`: drive the Stripe stand-in `./dev up` started, by hand. Time moves
through Stripe's own test clock API (`/v1/test_helpers/test_clocks`); a failing card is the
stand-in's control endpoint (docs/stripe-standin.md)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from tessera.devstack.stack import STANDIN_API_KEY

DAY = 86400


class ControlError(Exception):
    """What the stand-in refused, or who could not be found."""


@dataclass(frozen=True)
class Advanced:
    account: str | None  # None: the platform's own account
    clock: str
    frozen_time: int
    customers: tuple[str, ...]


def _client(base_url: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, headers={"authorization": f"Bearer {STANDIN_API_KEY}"}, timeout=30
    )


def _checked(answer: httpx.Response) -> dict[str, Any]:
    if answer.status_code != 200:
        raise ControlError(f"{answer.request.method} {answer.request.url.path}: {answer.text}")
    body: dict[str, Any] = answer.json()
    return body


def _listed(
    http: httpx.Client, path: str, account: str | None, **params: str
) -> Iterator[dict[str, Any]]:
    """Every object of a Stripe list, page by page."""
    headers = {"stripe-account": account} if account else {}
    after: dict[str, str] = {}
    while True:
        page = _checked(http.get(path, params={**params, **after, "limit": "100"}, headers=headers))
        yield from page["data"]
        if not page["has_more"] or not page["data"]:
            return
        after = {"starting_after": page["data"][-1]["id"]}


def _accounts(http: httpx.Client) -> list[str | None]:
    """The platform and every connected account (Connect sellers' customers live there)."""
    return [None, *(a["id"] for a in _listed(http, "/v1/accounts", None))]


def customers(http: httpx.Client, email: str | None) -> list[tuple[str | None, dict[str, Any]]]:
    """(account, customer) for every customer with `email` (every customer if None)."""
    wanted = {"email": email} if email else {}
    return [
        (account, customer)
        for account in _accounts(http)
        for customer in _listed(http, "/v1/customers", account, **wanted)
    ]


def advance(base_url: str, days: float, email: str | None = None) -> list[Advanced]:
    """Move the test clock of every customer with `email` (of every customer if None)
    `days` on: Stripe renews, retries and ends their subscriptions as it would have."""
    if days <= 0:
        raise ControlError("--days must be more than 0")
    with _client(base_url) as http:
        clocks: dict[tuple[str | None, str], list[str]] = {}
        for account, customer in customers(http, email):
            if customer["test_clock"]:
                key = (account, customer["test_clock"])
                clocks.setdefault(key, []).append(customer["email"] or customer["id"])
        if not clocks:
            whose = f"of {email}" if email else "at all"
            raise ControlError(f"no customer {whose} is on a test clock")
        done = []
        for (account, clock_id), emails in sorted(clocks.items(), key=str):
            headers = {"stripe-account": account} if account else {}
            path = f"/v1/test_helpers/test_clocks/{clock_id}"
            clock = _checked(http.get(path, headers=headers))
            target = int(clock["frozen_time"] + days * DAY)
            moved = _checked(
                http.post(f"{path}/advance", data={"frozen_time": target}, headers=headers)
            )
            done.append(Advanced(account, clock_id, moved["frozen_time"], tuple(emails)))
        return done


def set_failing(base_url: str, email: str, failing: bool) -> list[str]:
    """Make the card of every customer with `email` decline (or pay again); their ids."""
    with _client(base_url) as http:
        found = customers(http, email)
        if not found:
            raise ControlError(f"no customer has the email {email}")
        for _, customer in found:
            _checked(
                http.post(
                    f"/_standin/customers/{customer['id']}/payment_method",
                    data={"failing": "true" if failing else "false"},
                )
            )
        return [customer["id"] for _, customer in found]
