"""Audit: who did what to which account or order, when, from where. Owns `audit_log`."""
