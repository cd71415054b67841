"""API keys: the format (`format.py`), the in-memory verifier fed from JetStream
(`book.py`) and the FastAPI dependencies (`dependencies.py`).

Auth issues keys and publishes each key's record (`ApiKeyChanged`, hash only) through its
outbox; every service verifies keys locally in a `KeyBook`, with no call per request.
"""

from tessera.shared.api_keys.book import (
    ExpiredKey,
    KeyBook,
    RevokedKey,
    SellerCredential,
    UnknownKey,
)
from tessera.shared.api_keys.dependencies import (
    SecretSellerDep,
    SellerDep,
    current_secret_seller,
    current_seller,
)
from tessera.shared.api_keys.format import (
    ENTROPY_BITS,
    IssuedKey,
    KeyRefused,
    MalformedKey,
    ParsedKey,
    generate,
    hash_key,
    parse,
)

__all__ = [
    "ENTROPY_BITS",
    "ExpiredKey",
    "IssuedKey",
    "KeyBook",
    "KeyRefused",
    "MalformedKey",
    "ParsedKey",
    "RevokedKey",
    "SecretSellerDep",
    "SellerCredential",
    "SellerDep",
    "UnknownKey",
    "current_secret_seller",
    "current_seller",
    "generate",
    "hash_key",
    "parse",
]
