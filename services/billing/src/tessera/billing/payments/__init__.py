"""The money Stripe moved for a tenant's sales: each paid subscription invoice or one-time
order, its charge's and refunds' balance transactions (Stripe's fees) and the refunds of
subscription invoices (docs/billing.md, "Revenue")."""
