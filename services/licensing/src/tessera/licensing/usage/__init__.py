"""Usage metering: per customer and metered feature, a limit per period and a rate per
minute from the customer's tier; exact, durable counting in Postgres (docs/usage.md)."""
