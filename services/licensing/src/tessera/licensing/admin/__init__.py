"""The admin API: search, grant, suspend, reinstate, revoke, reset activations, extend,
audit log and CSV export. Every change is written to the audit log in its transaction."""
