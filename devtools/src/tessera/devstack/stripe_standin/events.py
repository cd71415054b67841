"""Events: `/v1/events` (Stripe keeps them to be read back) and the deliveries log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.wire import Obj, page


def _current(call: Call, event: Obj) -> Obj:
    deliverer = call.store.deliverer
    return deliverer.current(event) if deliverer is not None else event


def retrieve_event(call: Call) -> Obj:
    return _current(call, call.store.get(call.account, "event", call.path["id"]))


def list_events(call: Call) -> Obj:
    params = call.params
    types = set(params.strings("types"))
    kind = params.text("type")

    def wanted(event: Obj) -> bool:
        if kind is not None:
            # Stripe's `type` filter takes one `*` wildcard (`invoice.*`).
            prefix, star, suffix = kind.partition("*")
            if not (
                event["type"] == kind
                or (star and event["type"].startswith(prefix) and event["type"].endswith(suffix))
            ):
                return False
        return not types or event["type"] in types

    events = [_current(call, event) for event in call.store.all(call.account, "event")]
    return page(events, params, "/v1/events", filtered=wanted)


def reset(call: Call) -> Obj:
    """Control: `POST /_standin/reset` forgets everything, as a restart would, but keeps the
    webhook endpoints of the settings (those made through the API go too)."""
    call.store.reset()
    if call.store.deliverer is not None:
        for target in list(call.store.deliverer.targets):
            if target.endpoint_id is not None:
                call.store.deliverer.remove(target.endpoint_id)
    return {"reset": True}


ENDPOINTS = [
    Endpoint("GET", "/v1/events", list_events, ("type", "types", "created", "delivery_success")),
    Endpoint("GET", "/v1/events/{id}", retrieve_event),
    Endpoint("POST", "/_standin/reset", reset, api=False),
]


async def deliveries(request: Request) -> JSONResponse:
    """Every delivery attempt, oldest first (a control endpoint, not Stripe's API)."""
    standin = request.app.state.standin
    return JSONResponse({"data": [a.describe() for a in standin.deliverer.attempts]})
