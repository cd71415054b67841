"""The keys that sign access tokens: created, rotated by the operator CLI, sealed at rest,
loaded into a ring each replica caches, and published as a JWKS. Owns `signing_keys`. Below
the auth context (which holds the ring) and `tokens/` (which signs with it)."""
