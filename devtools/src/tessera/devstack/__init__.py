"""The `./dev` bootstrap: find or start NATS, Postgres and Redis, then run the stack or the
tests against them."""
