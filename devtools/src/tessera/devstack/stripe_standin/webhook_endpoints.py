"""`/v1/webhook_endpoints`: endpoints registered at run time, as in Stripe's dashboard or
API (`connect=true` for a Connect endpoint); the secret is shown once, on create."""

from __future__ import annotations

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.store import API_VERSION, PLATFORM
from tessera.devstack.stripe_standin.webhooks import Deliverer, Target
from tessera.devstack.stripe_standin.wire import Obj, Params, StripeApiError, invalid, new_id, page

KIND = "webhook_endpoint"


def _deliverer(call: Call) -> Deliverer:
    if call.account != PLATFORM:
        raise StripeApiError(403, "Webhook endpoints belong to the platform account.")
    assert call.store.deliverer is not None
    return call.store.deliverer


def _events(params: Params, *, required: bool) -> tuple[str, ...]:
    events = params.strings("enabled_events")
    if required and not events:
        raise invalid(
            "enabled_events", "Missing required param: enabled_events.", "parameter_missing"
        )
    return tuple(events)


def _url(params: Params, *, required: bool) -> str | None:
    url = params.text("url", required=required)
    if url is not None and not url.startswith(("http://", "https://")):
        raise invalid("url", "Invalid URL: the URL must be an http or https URL.", "url_invalid")
    return url


def create_endpoint(call: Call) -> Obj:
    deliverer = _deliverer(call)
    params = call.params
    url = _url(params, required=True)
    assert url is not None
    endpoint: Obj = {
        "id": new_id("we_1"),
        "object": KIND,
        "api_version": params.text("api_version") or API_VERSION,
        "application": None,
        "created": call.now(),
        "description": params.text("description"),
        "enabled_events": list(_events(params, required=True)),
        "livemode": False,
        "metadata": params.metadata(),
        "status": "enabled",
        "url": url,
    }
    secret = new_id("whsec_", 32)
    call.store.add(PLATFORM, endpoint)
    connect = bool(params.boolean("connect"))
    deliverer.add(Target(url, secret, connect, tuple(endpoint["enabled_events"]), endpoint["id"]))
    return {**endpoint, "secret": secret}


def _target(call: Call, endpoint: Obj) -> Target:
    return next(t for t in _deliverer(call).targets if t.endpoint_id == endpoint["id"])


def retrieve_endpoint(call: Call) -> Obj:
    _deliverer(call)
    return call.store.get(PLATFORM, KIND, call.path["id"])


def update_endpoint(call: Call) -> Obj:
    endpoint = retrieve_endpoint(call)
    target = _target(call, endpoint)
    params = call.params
    url = _url(params, required=False)
    if url is not None:
        endpoint["url"] = target.url = url
    events = _events(params, required=False)
    if events:
        endpoint["enabled_events"] = list(events)
        target.events = events
    disabled = params.boolean("disabled")
    if disabled is not None:
        endpoint["status"] = "disabled" if disabled else "enabled"
        target.enabled = not disabled
    if params.has("description"):
        endpoint["description"] = params.text("description") or None
    endpoint["metadata"] = params.metadata(endpoint["metadata"])
    return endpoint


def delete_endpoint(call: Call) -> Obj:
    endpoint = retrieve_endpoint(call)
    _deliverer(call).remove(endpoint["id"])
    call.store.remove(endpoint["id"])
    return {"id": endpoint["id"], "object": KIND, "deleted": True}


def list_endpoints(call: Call) -> Obj:
    _deliverer(call)
    return page(call.store.all(PLATFORM, KIND), call.params, "/v1/webhook_endpoints")


FIELDS = ("url", "enabled_events", "description", "metadata")

ENDPOINTS = [
    Endpoint("POST", "/v1/webhook_endpoints", create_endpoint, (*FIELDS, "connect", "api_version")),
    Endpoint("GET", "/v1/webhook_endpoints", list_endpoints),
    Endpoint("GET", "/v1/webhook_endpoints/{id}", retrieve_endpoint),
    Endpoint("POST", "/v1/webhook_endpoints/{id}", update_endpoint, (*FIELDS, "disabled")),
    Endpoint("DELETE", "/v1/webhook_endpoints/{id}", delete_endpoint),
]
