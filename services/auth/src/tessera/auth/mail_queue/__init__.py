"""The mail queue: `email_outbox`, which a change writes a mail into in its own transaction
(`enqueue`), and which the sender (`mail/`) leases, sends and settles. Owns `email_outbox`.
Below users and links, which queue mail, and mail, which sends it."""
