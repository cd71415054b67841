"""Licenses: issued per seat of a paid order (or granted by an admin), looked up by the hash
of their key, and moved between active, suspended and revoked by billing's events."""
