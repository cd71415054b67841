"""Portal-web: the customer portal and, behind its own role boundary, the admin portal.
It owns no business data: it calls auth, licensing and billing over HTTP."""
