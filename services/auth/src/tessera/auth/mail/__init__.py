"""Mail: what auth sends (welcome, sign-in link and code, new-device notice), queued in
`email_outbox` (`mail_queue/`) by the change that causes it and sent by a background sender
over SMTP with retries, so a request never waits on (or fails because of) the mail server.
The sender composes each mail when it sends it, minting the sign-in link then."""
