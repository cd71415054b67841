"""Members: developers (home-seller users) who run a seller, as owner or developer; the
seller sign-up that makes a seller and its first owner; invites. Owns `seller_members` and
`seller_invites`. Above links and sessions (it signs the developer in); below mail, which
mints an invite's token when it sends the invite."""
