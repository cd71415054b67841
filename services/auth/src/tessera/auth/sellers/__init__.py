"""Sellers: the `sellers` table, the home seller made at first start, and the directory
record (`SellerChanged`) published through the outbox on every change. Below users and
tokens (a token names its seller's slug); members and invites are `members/`."""
