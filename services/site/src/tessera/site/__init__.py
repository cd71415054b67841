"""Site: the public marketing and docs site, a static build (no server logic)."""
