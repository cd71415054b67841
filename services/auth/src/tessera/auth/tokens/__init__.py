"""Access tokens: Ed25519 (EdDSA) JWTs with a `kid`, the JWKS that verifies them, and the
signing keys behind both (encrypted at rest, rotated by the operator CLI). Owns
`signing_keys`."""
