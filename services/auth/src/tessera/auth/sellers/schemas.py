"""Sellers as the API names them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{2,39}$"

# A seller's slug in a path: it names a page or one of the caller's own sellers, never
# whose data a call may touch (that comes from the credential).
Slug = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=40)]
