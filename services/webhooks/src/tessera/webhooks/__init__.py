"""Tessera webhooks: outbound, signed, retried deliveries of public events to sellers."""
