"""Revenue a seller understands: MRR and its movements, churn, ARPU, subscribers by tier,
gross and net revenue (docs/billing.md, "Revenue")."""
