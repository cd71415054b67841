"""The customer's own licenses (access token): see them with their machines, free a seat."""
