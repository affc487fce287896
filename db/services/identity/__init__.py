"""Identity and access: accounts, one-time codes, sessions (refresh tokens), audit log."""
