"""The seller's own licensing API: a secret key's seller grants, lists and changes the
licenses of its customers, in the key's mode."""
