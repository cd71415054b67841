"""Sessions: opaque ids (256 bits) stored only as keyed hashes in Redis, with idle and
absolute timeouts; browser sessions from a sign-in and device sessions (refresh-token
families) from the device grant, listed and revoked together."""
