"""Names in the customer's words: products and plans from billing's catalog."""
