"""Test vectors for docs/licensing-client.md, generated so they cannot drift.

`python -m tessera.licensing_client.testvectors` prints the block the doc carries; a test
checks that the doc's block is exactly this output, that every vector verifies or fails as
stated (here and with an independent JOSE library), and that the service's own signer
produces the same valid lease from the same key and claims.

Keys are RFC 8032's Ed25519 test keys (7.1: TEST 1 and 2 sign leases, TEST 3 is the pinned
root, TEST SHA(abc) the next root, TEST 1024 a foreign root), so an implementer can check
their Ed25519 against the RFC first.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from tessera.licensing_client.jose import b64url
from tessera.licensing_client.store import FORMAT, cache_key, seal_record

KEY_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
WRONG_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
ROOT_SEED = bytes.fromhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7")
NEXT_ROOT_SEED = bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
FOREIGN_SEED = bytes.fromhex("f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5")
KEY_SET_TYP = "tessera-key-set+jwt"
MACHINE_ID = "test-machine-id-0001"
NOW = 1767312000  # 2026-01-02T00:00:00Z: the "now" at which every vector is checked
FINGERPRINT = "test-machine-fingerprint-0001"
DAY = 86400


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def thumbprint(public_key: bytes) -> str:
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_key)}
    return b64url(hashlib.sha256(canonical_json(members)).digest())


def pin(seed: bytes) -> str:
    return b64url(bytes(SigningKey(seed).verify_key))


def kid_of(seed: bytes) -> str:
    return thumbprint(bytes(SigningKey(seed).verify_key))


def jws(seed: bytes, kid: str, claims: dict[str, Any], typ: str = "JWT") -> str:
    header = b64url(canonical_json({"alg": "EdDSA", "kid": kid, "typ": typ}))
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


def lease_jwk(seed: bytes) -> dict[str, str]:
    public = bytes(SigningKey(seed).verify_key)
    return {
        "alg": "EdDSA",
        "crv": "Ed25519",
        "kid": thumbprint(public),
        "kty": "OKP",
        "use": "sig",
        "x": b64url(public),
    }


def key_set_claims(version: int, iat: int, keys: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "exp": iat + 30 * DAY,
        "iat": iat,
        "iss": "tessera-licensing",
        "keys": keys,
        "typ": "tessera-key-set",
        "version": version,
    }


def key_sets() -> list[dict[str, Any]]:
    """Each vector: the `key_sets` list as /v1/public-keys would send it, the pins and the
    version floor the client holds, and the verdict (`KeySetError.code`, or VALID)."""
    root, nxt = pin(ROOT_SEED), pin(NEXT_ROOT_SEED)
    good = key_set_claims(2, NOW - DAY, [lease_jwk(KEY_SEED)])
    valid = jws(ROOT_SEED, kid_of(ROOT_SEED), good, KEY_SET_TYP)
    head, _, sig = valid.split(".")
    added = {**good, "keys": [lease_jwk(KEY_SEED), lease_jwk(FOREIGN_SEED)]}
    unsigned_head = b64url(canonical_json({"alg": "none", "typ": KEY_SET_TYP}))

    def vector(name: str, sets: list[str], expect: str, **extra: Any) -> dict[str, Any]:
        return (
            {"name": name, "key_sets": sets, "pins": [root], "min_version": 0}
            | extra
            | {"expect": expect}
        )

    return [
        vector("valid", [valid], "VALID"),
        vector(
            "foreign_key_set",
            [jws(FOREIGN_SEED, kid_of(FOREIGN_SEED), added, KEY_SET_TYP)],
            "FOREIGN_ROOT",
        ),
        vector(
            "unsigned_key_set", [f"{unsigned_head}.{b64url(canonical_json(added))}."], "UNSIGNED"
        ),
        vector("no_key_set", [], "UNSIGNED"),
        vector(
            "impostor_root",
            [jws(FOREIGN_SEED, kid_of(ROOT_SEED), added, KEY_SET_TYP)],
            "BAD_SIGNATURE",
        ),
        vector(
            "tampered_key_set", [f"{head}.{b64url(canonical_json(added))}.{sig}"], "BAD_SIGNATURE"
        ),
        vector("short_signature", [f"{head}.{valid.split('.')[1]}.{sig[:43]}"], "BAD_SIGNATURE"),
        vector("rolled_back", [valid], "ROLLED_BACK", min_version=3),
        vector(
            "expired",
            [
                jws(
                    ROOT_SEED,
                    kid_of(ROOT_SEED),
                    key_set_claims(3, NOW - 31 * DAY, [lease_jwk(KEY_SEED)]),
                    KEY_SET_TYP,
                )
            ],
            "EXPIRED",
        ),
        vector(
            "rotated_root_not_pinned",
            [jws(NEXT_ROOT_SEED, kid_of(NEXT_ROOT_SEED), {**good, "version": 3}, KEY_SET_TYP)],
            "FOREIGN_ROOT",
        ),
        vector(
            "rotated_root_pinned",
            [jws(NEXT_ROOT_SEED, kid_of(NEXT_ROOT_SEED), {**good, "version": 3}, KEY_SET_TYP)],
            "VALID",
            pins=[root, nxt],
        ),
        vector(
            "co_signed_during_rotation",
            [
                jws(NEXT_ROOT_SEED, kid_of(NEXT_ROOT_SEED), {**good, "version": 3}, KEY_SET_TYP),
                jws(ROOT_SEED, kid_of(ROOT_SEED), {**good, "version": 3}, KEY_SET_TYP),
            ],
            "VALID",
        ),
    ]


def cache_records(valid_lease: str, key_set: str) -> list[dict[str, Any]]:
    """Cache records (the file's JSON) for machine `MACHINE_ID` with no app secret, checked
    at NOW with the pinned root; the verdict is `LeaseError.code`, or VALID."""
    key = cache_key(MACHINE_ID)
    iat = NOW - DAY
    good = seal_record(
        {
            "format": FORMAT,
            "key_set": key_set,
            "key_set_version": 2,
            "lease": valid_lease,
            "local_high_water": NOW - 3600,
            "signed_high_water": iat,
        },
        key,
    )
    other_machine = seal_record(good, cache_key("another-machine-id"))
    foreign = jws(
        FOREIGN_SEED,
        kid_of(FOREIGN_SEED),
        key_set_claims(9, iat, [lease_jwk(FOREIGN_SEED)]),
        KEY_SET_TYP,
    )
    forged_lease = jws(
        FOREIGN_SEED, lease_jwk(FOREIGN_SEED)["kid"], {**claims(iat), "exp": iat + 3650 * DAY}
    )
    return [
        {"name": "valid", "record": good, "expect": "VALID"},
        {
            "name": "edited_field",
            "record": {**good, "local_high_water": 1},
            "expect": "CACHE_TAMPERED",
        },
        {
            "name": "copied_from_another_machine",
            "record": other_machine,
            "expect": "CACHE_TAMPERED",
        },
        {
            "name": "foreign_key_set_resealed_with_the_machine_key",
            "record": seal_record({**good, "key_set": foreign, "lease": forged_lease}, key),
            "expect": "CACHE_TAMPERED",
        },
        {
            "name": "last_seen_zero_resealed_with_the_machine_key",
            "record": seal_record({**good, "signed_high_water": 0, "local_high_water": 0}, key),
            "expect": "CACHE_TAMPERED",
        },
        {
            "name": "clock_set_back",
            "record": seal_record({**good, "local_high_water": NOW + 7 * DAY}, key),
            "expect": "CLOCK_ROLLED_BACK",
        },
    ]


def vectors() -> dict[str, Any]:
    public = bytes(SigningKey(KEY_SEED).verify_key)
    kid = thumbprint(public)
    valid_claims = claims(NOW - DAY)
    valid = jws(KEY_SEED, kid, valid_claims)
    header, payload, signature = valid.split(".")
    tampered_claims = {**valid_claims, "entitlements": ["chartgpt.core", "chartgpt.pro"]}
    tampered = f"{header}.{b64url(canonical_json(tampered_claims))}.{signature}"
    sets = key_sets()
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
            {"name": "empty_signature", "lease": f"{header}.{payload}.", "expect": "MALFORMED"},
            {
                "name": "short_signature",
                "lease": f"{header}.{payload}.{signature[:43]}",
                "expect": "MALFORMED",
            },
        ],
        "root_private_key_seed_hex": ROOT_SEED.hex(),
        "pins": [pin(ROOT_SEED)],
        "next_root_pin": pin(NEXT_ROOT_SEED),
        "key_sets": sets,
        "cache_machine_id": MACHINE_ID,
        "cache": cache_records(valid, sets[0]["key_sets"][0]),
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
