"""Signing in and out: the email form, the link's landing page (a button that POSTs, so a
mail scanner that fetches the link signs nobody in), the one-time code, sign-out."""
