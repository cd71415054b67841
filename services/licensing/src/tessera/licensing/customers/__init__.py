"""Customers: the accounts licensing knows of, learnt from `billing.account.created.v1`."""
