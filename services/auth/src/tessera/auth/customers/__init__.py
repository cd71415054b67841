"""The customer API: a seller's server creates, finds, lists and updates its customers with
a secret key; the seller and the mode come from the key alone."""
