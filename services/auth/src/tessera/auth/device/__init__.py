"""Desktop sign-in: the OAuth 2.0 Device Authorization Grant (RFC 8628) and the refresh
tokens it hands out (rotated on every use, with reuse detection). A device sign-in is a
session of kind `device`, listed and revoked with the browser sessions."""
