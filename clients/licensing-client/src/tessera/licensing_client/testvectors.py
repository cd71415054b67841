"""Test vectors for docs/licensing-client.md, generated so they cannot drift.

`python -m tessera.licensing_client.testvectors` prints the block the doc carries; a test
checks that the doc's block is exactly this output, that every vector verifies or fails as
stated (here and with an independent JOSE library), and that the service's own signer
produces the same valid lease from the same key and claims.

Keys are RFC 8032's Ed25519 test keys 1 and 2, so an implementer can check their Ed25519
against the RFC first.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from tessera.licensing_client.jose import b64url

KEY_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
WRONG_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
NOW = 1767312000  # 2026-01-02T00:00:00Z: the "now" at which every vector is checked
FINGERPRINT = "test-machine-fingerprint-0001"
DAY = 86400


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def thumbprint(public_key: bytes) -> str:
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_key)}
    return b64url(hashlib.sha256(canonical_json(members)).digest())


def jws(seed: bytes, kid: str, claims: dict[str, Any]) -> str:
    header = b64url(canonical_json({"alg": "EdDSA", "kid": kid, "typ": "JWT"}))
    signing_input = f"{header}.{b64url(canonical_json(claims))}"
    signature = SigningKey(seed).sign(signing_input.encode()).signature
    return f"{signing_input}.{b64url(signature)}"


def claims(iat: int) -> dict[str, Any]:
    return {
        "iss": "tessera-licensing",
        "sub": "0193f5a0-0000-7000-8000-000000000001",
        "license_id": "0193f5a0-0000-7000-8000-000000000001",
        "account_id": "0193f5a0-0000-7000-8000-0000000000aa",
        "product": "chartgpt",
        "entitlements": ["chartgpt.core"],
        "fingerprint": FINGERPRINT,
        "status": "active",
        "iat": iat,
        "renew_at": iat + 14 * DAY,
        "exp": iat + 17 * DAY,
        "license_expires_at": None,
    }


def vectors() -> dict[str, Any]:
    public = bytes(SigningKey(KEY_SEED).verify_key)
    kid = thumbprint(public)
    valid_claims = claims(NOW - DAY)
    valid = jws(KEY_SEED, kid, valid_claims)
    header, _, signature = valid.split(".")
    tampered_claims = {**valid_claims, "entitlements": ["chartgpt.core", "chartgpt.pro"]}
    tampered = f"{header}.{b64url(canonical_json(tampered_claims))}.{signature}"
    body = canonical_json({"code": "VALID", "nonce": "n-0001", "valid": True})
    created = NOW
    digest = b64url(hashlib.sha256(body).digest())
    message = f"tessera-response-v1\nPOST\n/v1/licenses/validate\n{created}\n{digest}"
    return {
        "now": NOW,
        "fingerprint": FINGERPRINT,
        "private_key_seed_hex": KEY_SEED.hex(),
        "jwks": {
            "keys": [
                {
                    "alg": "EdDSA",
                    "crv": "Ed25519",
                    "kid": kid,
                    "kty": "OKP",
                    "use": "sig",
                    "x": b64url(public),
                }
            ]
        },
        "payload": valid_claims,
        "leases": [
            {"name": "valid", "lease": valid, "expect": "VALID"},
            {"name": "tampered", "lease": tampered, "expect": "BAD_SIGNATURE"},
            {
                "name": "expired",
                "lease": jws(KEY_SEED, kid, claims(NOW - 20 * DAY)),
                "expect": "EXPIRED",
            },
            {
                "name": "wrong_key",
                "lease": jws(WRONG_SEED, kid, valid_claims),
                "expect": "BAD_SIGNATURE",
            },
            {
                "name": "issued_in_future",
                "lease": jws(KEY_SEED, kid, claims(NOW + DAY)),
                "expect": "ISSUED_IN_FUTURE",
            },
        ],
        "response_signature": {
            "method": "POST",
            "path": "/v1/licenses/validate",
            "body": body.decode(),
            "signing_input": message,
            "header": f'kid="{kid}", created={created}, sig="{b64url(SigningKey(KEY_SEED).sign(message.encode()).signature)}"',
        },
    }


def render() -> str:
    return json.dumps(vectors(), indent=2, sort_keys=True) + "\n"


START, END = "<!-- test-vectors:start -->\n", "<!-- test-vectors:end -->"


def block_in(document: str) -> str:
    """The JSON between the doc's markers (without the code fence)."""
    inner = document.split(START, 1)[1].split(END, 1)[0]
    return inner.removeprefix("```json\n").removesuffix("```\n")


def with_block(document: str) -> str:
    head, rest = document.split(START, 1)
    tail = rest.split(END, 1)[1] if END in rest else "\n"
    return f"{head}{START}```json\n{render()}```\n{END}{tail}"


def main(argv: list[str]) -> None:
    """No argument: print the vectors. `--write DOC`: refresh the block in DOC."""
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        path.write_text(with_block(path.read_text(encoding="utf-8")), encoding="utf-8")
        return
    print(render(), end="")


if __name__ == "__main__":
    main(sys.argv[1:])
