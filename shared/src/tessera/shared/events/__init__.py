"""Event contracts: the envelope, one payload module per producer, and the JetStream topology.

Payloads are the only thing services share besides the kernel. Subjects follow
`<producer>.<entity>.<past verb>.v<N>`; a breaking change is a new version.
"""

from tessera.shared.events.envelope import Event

__all__ = ["Event"]
