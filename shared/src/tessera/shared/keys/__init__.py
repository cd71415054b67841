"""The services' one signing stack, on PyNaCl (libsodium): Ed25519 signatures and compact JWS,
keys sealed at rest, key rings (the current key and the retiring ones still published), JWKS
rendering, and the one base64url helper.

Import from here (`from tessera.shared.keys import Signer, Sealer, b64url`), not from the
submodules. The library was chosen by measurement (`bench/signing_libraries.py`,
docs/performance.md "Signing library"). The desktop client (`clients/licensing-client`) does
not use this package: it keeps its own small verifier.
"""

from tessera.shared.keys.ed25519 import (
    Signer,
    new_signer,
    public_jwk,
    signer_of,
    thumbprint,
    verify,
)
from tessera.shared.keys.encoding import b64url, b64url_decode, canonical_json
from tessera.shared.keys.ring import (
    PUBLISH_MARGIN_SECONDS,
    KeyRing,
    SealedKeyMismatch,
    jwks,
    open_signer,
    publish_for,
)
from tessera.shared.keys.sealing import Sealer, SealingError

__all__ = [
    "PUBLISH_MARGIN_SECONDS",
    "KeyRing",
    "SealedKeyMismatch",
    "Sealer",
    "SealingError",
    "Signer",
    "b64url",
    "b64url_decode",
    "canonical_json",
    "jwks",
    "new_signer",
    "open_signer",
    "public_jwk",
    "publish_for",
    "signer_of",
    "thumbprint",
    "verify",
]
