"""The catalog's sync to Stripe: an outbox of Stripe calls (the `stripe_sync` table, one row
per product or price, written in the same transaction as the change) and the worker that
makes them through the official library (docs/billing.md, "Sync to Stripe")."""
