"""Postgres: pools, database creation, migrations, and the outbox/inbox tables they carry."""
