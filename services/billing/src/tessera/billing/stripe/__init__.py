"""Stripe, as billing speaks it: the parts of Stripe's objects billing reads (objects.py),
the `Stripe-Signature` check on webhook deliveries (signature.py) and the API gateway that
creates Checkout Sessions (gateway.py). Below checkout, orders and webhooks, which all use
it; it imports none of them."""
