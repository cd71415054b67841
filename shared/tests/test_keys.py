"""The signing kernel (tessera.shared.keys), checked against independent implementations:
PyJWT over `cryptography` for EdDSA, Python's base64, RFC 8037's thumbprint example."""

from __future__ import annotations

import base64

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.secret import SecretBox

from tessera.shared import keys
from tessera.shared.keys import (
    KeyRing,
    SealedKeyMismatch,
    Sealer,
    SealingError,
    b64url,
    b64url_decode,
    new_signer,
    open_signer,
    signer_of,
    thumbprint,
    verify,
)

KEK = bytes(range(32))


def test_b64url_is_rfc_7515_base64url_without_padding() -> None:
    for n in range(70):
        data = bytes((7 * i + n) % 256 for i in range(n))
        expected = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        assert b64url(data) == expected
        assert b64url_decode(expected) == data


def test_the_thumbprint_is_rfc_8037s_example() -> None:
    x = b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    assert thumbprint(x) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_a_jws_verifies_with_an_independent_eddsa_and_names_its_kid() -> None:
    signer = new_signer(kid="k1")
    token = signer.jws({"sub": "a", "n": 1})
    public = Ed25519PublicKey.from_public_bytes(signer.public_key)
    assert jwt.decode(token, key=public, algorithms=["EdDSA"]) == {"sub": "a", "n": 1}
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "k1", "typ": "JWT"}
    typed = signer.jws_typed({"v": 2}, "x+jwt")
    assert jwt.get_unverified_header(typed)["typ"] == "x+jwt"


def test_verify_takes_only_a_valid_signature() -> None:
    signer = signer_of(bytes(32))
    assert signer.kid == thumbprint(signer.public_key)
    sig = signer.sign(b"message")
    assert verify(signer.public_key, b"message", sig)
    assert not verify(signer.public_key, b"messagE", sig)
    assert not verify(signer.public_key, b"message", sig[:-1])
    assert not verify(new_signer().public_key, b"message", sig)


def test_sealing_is_secretbox_and_refuses_another_key_or_tampering() -> None:
    sealer = Sealer(KEK)
    sealed = sealer.seal(b"s" * 32)
    assert len(sealed) == Sealer.OVERHEAD + 32 and b"s" * 32 not in sealed
    assert sealer.open(sealed) == b"s" * 32
    # What licensing stored before the kernel (SecretBox under the KEK) opens unchanged.
    assert sealer.open(bytes(SecretBox(KEK).encrypt(b"old"))) == b"old"
    assert bytes(SecretBox(KEK).decrypt(sealed)) == b"s" * 32
    with pytest.raises(SealingError):
        Sealer(bytes(32)).open(sealed)
    with pytest.raises(SealingError):
        sealer.open(sealed[:-1] + bytes([sealed[-1] ^ 1]))


def test_a_sealed_key_must_be_the_key_its_row_publishes() -> None:
    sealer = Sealer(KEK)
    one, other = new_signer(), new_signer()
    opened = open_signer(sealer, one.kid, sealer.seal(one.seed), one.public_key)
    assert opened.seed == one.seed and opened.kid == one.kid
    with pytest.raises(SealedKeyMismatch):
        open_signer(sealer, one.kid, sealer.seal(other.seed), one.public_key)


def test_a_ring_publishes_its_keys_as_a_jwks_and_retired_keys_for_their_longest_life() -> None:
    current, retiring = new_signer(), new_signer()
    ring = KeyRing(
        current, keys.jwks([(current.kid, current.public_key), (retiring.kid, retiring.public_key)])
    )
    assert ring.kids == {current.kid, retiring.kid}
    assert ring.jwks["keys"][0] == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(current.public_key),
        "kid": current.kid,
        "use": "sig",
        "alg": "EdDSA",
    }
    assert keys.publish_for(300, 5) == 300 + 5 + keys.PUBLISH_MARGIN_SECONDS
