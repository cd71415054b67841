"""Billing: money in. Stripe ingress, checkout, orders and accounts."""
