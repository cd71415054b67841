"""Licensing: what you may run. Licenses, machine activations, signed offline leases."""
