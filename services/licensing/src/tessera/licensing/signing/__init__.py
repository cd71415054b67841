"""Signing keys: the Ed25519 keys that sign leases and responses, sealed at rest, rotated by
an operator, and published as a JWKS until every lease they signed has expired."""
