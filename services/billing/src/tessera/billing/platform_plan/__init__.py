"""The platform plan sellers pay for (docs/sellers.md, "Platform plan")."""
