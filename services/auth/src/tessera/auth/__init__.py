"""Auth: who you are. Users, magic links, sessions, tokens, email, desktop sign-in."""
