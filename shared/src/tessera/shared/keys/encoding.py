"""base64url without padding (RFC 7515 §2) and the canonical JSON that gets signed."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url(data: bytes) -> str:
    # What base64.urlsafe_b64encode does, in two C calls instead of several Python ones
    # (licensing encodes three values per signed answer).
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """The bytes of base64url text, padded or not; binascii.Error when it is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_json(value: Any) -> bytes:
    # Sorted keys, no spaces, UTF-8: the same claims always give the same bytes (the client's
    # test vectors hold the services to it).
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
