"""Checkout: `GET /buy/{sku}` and `POST /v1/checkout/sessions` create a Stripe Checkout
Session; with no Stripe key configured, the built-in test checkout stands in for Stripe,
delivering Stripe-shaped, correctly signed webhooks to billing's own ingress over HTTP."""
