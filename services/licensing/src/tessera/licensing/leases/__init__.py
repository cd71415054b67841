"""Leases: the signed, offline proof that a machine may run a product until `exp`."""
