"""The portal's web plumbing: cookies, CSRF, who is signed in, pages and error pages."""
