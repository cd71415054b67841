"""Entitlements: what a customer's subscriptions grant, from billing's subscription events."""
