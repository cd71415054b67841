"""Sellers' API keys in auth: the `api_keys` table, issuing, rotating and revoking pairs
for a seller's members, and the `ApiKeyChanged` record each change publishes."""
