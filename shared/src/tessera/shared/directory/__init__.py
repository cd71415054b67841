"""The directories every replica of every service keeps in memory, each fed from a stream
that holds only the latest record per subject (KV semantics): the generic follower
(`follower.py`) and the seller directory built on it (`sellers.py`, `SellerBook`)."""

from tessera.shared.directory.follower import RecordFollower, follow_with_own_connection
from tessera.shared.directory.sellers import SellerBook, SellerEntry

__all__ = ["RecordFollower", "SellerBook", "SellerEntry", "follow_with_own_connection"]
