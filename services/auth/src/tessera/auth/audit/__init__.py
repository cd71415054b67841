"""Audit: one row per sign-in, failed verify, link request, session revoke, role change and
device approval (who, what, when, from where), readable by admins. Owns `audit_events`."""
