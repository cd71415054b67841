"""Admin HTTP: read users, disable or enable one, read the audit log (`/v1/admin/...`). Above
users, sessions and audit, which it calls; nothing imports it but the app."""
