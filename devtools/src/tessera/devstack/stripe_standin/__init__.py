"""A stand-in for Stripe's API that the official stripe library talks to unchanged
(`base_addresses={"api": url, "connect": url}`): products and prices, customers, Checkout,
subscriptions and invoices, test clocks, the billing portal and Connect, with signed
webhooks. See docs/stripe-standin.md."""
