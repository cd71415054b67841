"""Customers: the accounts licensing knows of, learnt from `billing.account.created.v1`
and `auth.user.created.v1`."""
