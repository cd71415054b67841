"""Orders: what was bought, by whom, and what happened to the money since (refunds,
disputes). Owns `orders`, `order_adjustments` and `disputes`; publishes
`billing.order.paid.v1`, `.refunded.v1`, `.disputed.v1`, `.dispute_closed.v1`."""
