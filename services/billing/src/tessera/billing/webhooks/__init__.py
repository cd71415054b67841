"""The Stripe webhook ingress: verify, record each event once, apply it to orders and write
the events it leads to into the outbox — all in one transaction, nothing slow on the path.
Owns `stripe_events`."""
