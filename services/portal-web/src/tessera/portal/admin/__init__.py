"""The admin portal (`/admin`, role admin only; anyone else gets 404): customer search, one
page per account, confirmed actions through the owning service's API, webhook events,
revenue and CSV exports."""
