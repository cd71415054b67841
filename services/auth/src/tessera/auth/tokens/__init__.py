"""Access tokens: Ed25519 (EdDSA) JWTs with a `kid`, minted for a session or device grant,
and the JWKS that verifies them. The keys behind both are in `signing_keys/`."""
