"""Subscriptions: checkout in subscription mode, their state from Stripe's events, the
seller API that changes them through Stripe, and the events billing publishes."""
