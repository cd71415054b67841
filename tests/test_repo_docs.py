"""What the integrator's docs state is what the code does (issue 14, item 14): the catalog's
prices, the exact body of auth's one sign-in 401, the Stripe events to enable, the metrics
an operator can chart, and the README's way to operations, performance and the manifests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tessera.auth.links.errors import SignInFailed
from tessera.billing.webhooks.service import CONNECT_ONLY, HANDLED
from tessera.shared.http.problems import TYPE_PREFIX

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def section(text: str, heading: str) -> str:
    """The Markdown under `heading`, up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1 :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def test_billing_docs_list_each_catalog_sku_with_its_price_and_limits() -> None:
    catalog = json.loads((ROOT / "deploy" / "catalog.json").read_text(encoding="utf-8"))
    table = section((DOCS / "billing.md").read_text(encoding="utf-8"), "## Catalog")
    rows = {
        row.split("|")[1].strip().strip("`"): row
        for row in table.splitlines()
        if row.startswith("| `")
    }
    products = [
        {**price, "product": product["code"]}
        for product in catalog["products"]
        if product["active"]
        for price in product["one_time_prices"]
        if price["active"]
    ]
    tiers = [
        {**tier, "product": product["code"]}
        for product in catalog["products"]
        if product["active"]
        for tier in product["tiers"]
        if tier["active"]
    ]
    assert set(rows) == {p["sku"] for p in products} | {t["code"] for t in tiers}
    for tier in tiers:
        cells = [c.strip() for c in rows[tier["code"]].split("|")[1:-1]]
        assert cells[1] == tier["name"]
        for interval, money in tier["prices"].items():
            units, cents = divmod(money["amount"], 100)
            assert f"{units}.{cents:02d} {money['currency'].upper()} a {interval}" in cells[2]
        assert f"`{tier['product']}`" in cells[3]
    for product in products:
        row = rows[product["sku"]]
        cells = [c.strip() for c in row.split("|")[1:-1]]
        units, cents = divmod(product["unit_amount"], 100)
        assert cells[1] == product["name"]
        assert cells[2] == f"{units}.{cents:02d} (`unit_amount` {product['unit_amount']})"
        assert cells[3] == product["currency"].upper()
        assert f"{product['seats_per_unit']} seat" in cells[4]
        assert f"`{product['product']}`" in cells[4] and f"`{product['policy']}`" in cells[4]
        assert cells[5] == f"{product['max_quantity']} units"


def test_the_stripe_walkthrough_enables_exactly_the_events_billing_acts_on() -> None:
    setup = section((DOCS / "billing.md").read_text(encoding="utf-8"), "## Setting up Stripe")
    [dashboard] = [line for line in setup.split("   - ") if line.startswith("events to send")]
    listed = set(re.findall(r"`([a-z_.]+)`", dashboard))
    assert listed == set(HANDLED) - CONNECT_ONLY
    [connect] = [line for line in setup.split("   - ") if line.startswith("Connect events to send")]
    assert set(re.findall(r"`([a-z_.]+)`", connect)) == set(HANDLED)
    [listen] = re.findall(r"--events (\S+)", setup)
    assert set(listen.split(",")) == set(HANDLED) - CONNECT_ONLY
    assert "stripe listen --forward-to localhost:8082/webhooks/stripe" in setup
    assert "sk_live_" in setup and "sk_test_" in setup


def test_auth_docs_give_the_exact_body_of_the_one_sign_in_401() -> None:
    text = (DOCS / "auth.md").read_text(encoding="utf-8")
    block = text.split("Byte for byte", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    documented: dict[str, Any] = json.loads(block)
    problem = SignInFailed()
    assert documented == {
        "type": TYPE_PREFIX + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "request_id": "<this request's id>",
    }


def test_operations_docs_list_every_metric_the_services_make() -> None:
    """Each instrument the code creates (`meter.create_*("name", ...)`) appears in
    docs/operations.md's metrics table."""
    sources = [
        ROOT / "shared" / "src" / "tessera" / "shared" / "metrics.py",
        *ROOT.glob("services/*/src/tessera/*/**/metrics.py"),
    ]
    made = re.compile(r"\.create_[a-z_]+\(\s*\"([a-z_.]+)\"")
    names = {name for path in sources for name in made.findall(path.read_text(encoding="utf-8"))}
    assert {"tessera.consumer.lag", "tessera.outbox.backlog", "tessera.webhook.deliveries"} <= names
    table = section((DOCS / "operations.md").read_text(encoding="utf-8"), "### Metrics")
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", table, re.MULTILINE))
    assert names <= documented, f"undocumented: {sorted(names - documented)}"


def test_the_readme_leads_to_operations_performance_and_the_k8s_manifests() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("docs/operations.md", "docs/performance.md", "deploy/k8s/", "docs/openapi/"):
        assert f"]({target}" in readme, target
        assert (ROOT / target).exists()
