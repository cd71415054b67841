"""Tessera's shared kernel: what every service needs and nothing domain-specific.

Settings, the event envelope and payloads (one module per producer), the transactional
outbox and inbox, the JetStream topology, the HTTP kernel, telemetry and Redis helpers.
"""
