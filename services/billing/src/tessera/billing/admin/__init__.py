"""Admin: orders and accounts search, webhook events and replay, complimentary grants,
revenue, CSV exports. Every route needs the admin role; every action is audited."""
