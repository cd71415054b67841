"""Where deliveries may go: https only and public addresses only in production, judged on
the addresses DNS gives, and the connection made to the address judged (DNS rebinding)."""

from __future__ import annotations

from typing import Any

import pytest
from webhooks_factories import A_LIVE, order_paid, receiving, until  # type: ignore[import-not-found]

from tessera.webhooks.targets import TargetRefused, check_url, resolve


def answering(*addresses: str) -> Any:
    """A resolver that answers every name with `addresses`, and records the names asked."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return list(addresses)

    resolver.asked = asked  # type: ignore[attr-defined]
    return resolver


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://[::1]/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/x",
        "https://api.localhost/x",
        "https://[::ffff:192.168.0.1]/x",
        "https://0.0.0.0/x",
    ],
    ids=["http", "loopback", "loopback6", "private", "metadata", "localhost", "sub-localhost",
         "mapped-private", "unspecified"],
)  # fmt: skip
async def test_production_refuses_before_resolving(url: str) -> None:
    resolver = answering("93.184.216.34")
    with pytest.raises(TargetRefused):
        await resolve(url, resolver, production=True)


@pytest.mark.parametrize(
    "addresses",
    [
        ("127.0.0.1",),
        ("10.0.0.7",),
        ("93.184.216.34", "192.168.1.1"),
        ("fe80::1",),
        ("100.64.0.1",),
    ],
    ids=["loopback", "private", "one-of-two-private", "link-local6", "cgnat"],
)
async def test_production_refuses_a_name_that_resolves_to_a_private_address(
    addresses: tuple[str, ...],
) -> None:
    with pytest.raises(TargetRefused):
        await resolve("https://rebind.example.com/x", answering(*addresses), production=True)


async def test_the_connection_goes_to_the_address_checked() -> None:
    resolver = answering("93.184.216.34")
    target = await resolve("https://hooks.example.com:8443/in?x=1", resolver, production=True)
    assert target.pinned_url == "https://93.184.216.34:8443/in?x=1"
    assert target.host_header == "hooks.example.com:8443"
    v6 = await resolve(
        "https://hooks.example.com/in", answering("2606:2800:220:1::1"), production=True
    )
    assert v6.pinned_url == "https://[2606:2800:220:1::1]/in"


def test_outside_production_http_and_local_receivers_are_allowed() -> None:
    assert check_url("http://127.0.0.1:9000/hooks", production=False) == ("127.0.0.1", 9000)
    with pytest.raises(TargetRefused):
        check_url("ftp://127.0.0.1/hooks", production=False)


@pytest.fixture
def rebinding_resolver() -> Any:
    return answering("127.0.0.1")


@pytest.mark.integration
async def test_a_delivery_connects_to_the_resolved_address_with_the_name_as_host(
    start_webhooks: Any, rebinding_resolver: Any
) -> None:
    # `receiver.invalid` exists in no DNS: the delivery arrives only because the worker
    # connects to the address its resolver gave, naming the host in `Host`.
    async with start_webhooks(resolver=rebinding_resolver) as h, receiving() as receiver:
        url = f"http://receiver.invalid:{receiver.port}/hooks"
        created = await h.endpoint(A_LIVE, url)
        receiver.secrets.append(created["secret"])
        await h.publish(order_paid(A_LIVE))
        await until(lambda: receiver.verified())
        assert receiver.verified()[0].headers["host"] == f"receiver.invalid:{receiver.port}"
        assert "receiver.invalid" in rebinding_resolver.asked


@pytest.mark.integration
async def test_in_production_a_refused_target_is_logged_not_sent(start_webhooks: Any) -> None:
    # The worker's policy, not the API's: a name that resolves privately at delivery time.
    resolver = answering("10.0.0.9")
    async with start_webhooks(resolver=resolver, public_targets_only=True) as h:
        created = await h.endpoint(A_LIVE, "https://rebind.example.com/hooks")
        await h.publish(order_paid(A_LIVE))

        async def logged() -> Any:
            page = await h.http.get(
                f"/v1/webhook-endpoints/{created['id']}/deliveries", headers=h.keys[A_LIVE]
            )
            return page.json()

        rows = await until(logged)
        assert rows[0]["status_code"] is None
        assert rows[0]["error"].startswith("refused: the host resolves to a private")
