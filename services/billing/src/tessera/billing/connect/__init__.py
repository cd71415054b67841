"""Stripe Connect: a seller connects its own Stripe account (OAuth, Standard accounts),
reads and ends the connection; `account.application.deauthorized` ends it too."""
