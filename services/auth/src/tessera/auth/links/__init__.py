"""Magic links: a sign-in link and a 6-digit code, mailed together, stored only as keyed
hashes in Redis for 10 minutes, single use, bound to the browser that asked."""
