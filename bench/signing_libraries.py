"""Micro-benchmark: Ed25519 sign and verify, and sealing a key at rest, in PyNaCl (libsodium)
and in `cryptography` (OpenSSL), in one process, alternated round after round.

    uv run python bench/signing_libraries.py --iterations 5000 --rounds 5

What is timed is what the services do per call: sign a ~200-byte message (licensing signs
every validate answer, auth every access token), verify it, seal a 32-byte private key and
open it again. Each operation runs `--iterations` times per round; the median round is
reported in microseconds per operation. Results go in docs/performance.md ("Signing
library").
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.secret import SecretBox
from nacl.signing import SigningKey

MESSAGE = b"tessera-response-v1\nPOST\n/v1/licenses/validate\n1765000000\n" + b"x" * 150
SECRET = os.urandom(32)
KEY = os.urandom(32)


def per_op_us(fn: Callable[[], object], iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - start) / iterations * 1e6


def cases() -> dict[str, Callable[[], object]]:
    nacl_key = SigningKey(SECRET)
    nacl_verify = nacl_key.verify_key
    nacl_sig = nacl_key.sign(MESSAGE).signature
    box = SecretBox(KEY)
    boxed = box.encrypt(SECRET)

    ossl_key = Ed25519PrivateKey.from_private_bytes(SECRET)
    ossl_public = ossl_key.public_key()
    ossl_sig = ossl_key.sign(MESSAGE)
    gcm = AESGCM(KEY)
    nonce = os.urandom(12)
    gcm_sealed = gcm.encrypt(nonce, SECRET, b"kid")
    chacha = ChaCha20Poly1305(KEY)
    chacha_sealed = chacha.encrypt(nonce, SECRET, b"kid")
    xnonce = os.urandom(24)
    x_sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(SECRET, b"kid", xnonce, KEY)

    return {
        "pynacl sign": lambda: nacl_key.sign(MESSAGE).signature,
        "cryptography sign": lambda: ossl_key.sign(MESSAGE),
        "pynacl verify": lambda: nacl_verify.verify(MESSAGE, nacl_sig),
        "cryptography verify": lambda: ossl_public.verify(ossl_sig, MESSAGE),
        "pynacl seal (SecretBox)": lambda: box.encrypt(SECRET),
        "cryptography seal (AES-GCM)": lambda: gcm.encrypt(os.urandom(12), SECRET, b"kid"),
        "pynacl unseal (SecretBox)": lambda: box.decrypt(boxed),
        "cryptography unseal (AES-GCM)": lambda: gcm.decrypt(nonce, gcm_sealed, b"kid"),
        "pynacl unseal (XChaCha20 AEAD)": lambda: crypto_aead_xchacha20poly1305_ietf_decrypt(
            x_sealed, b"kid", xnonce, KEY
        ),
        "cryptography unseal (ChaCha20 AEAD)": lambda: chacha.decrypt(nonce, chacha_sealed, b"kid"),
        # A key ring loads a key from its seed once per rotation, not per call; shown for scale.
        "pynacl key from seed": lambda: SigningKey(SECRET),
        "cryptography key from seed": lambda: Ed25519PrivateKey.from_private_bytes(SECRET),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    table = cases()
    results: dict[str, list[float]] = {name: [] for name in table}
    for _ in range(args.rounds):
        for name, fn in table.items():  # alternated: both libraries see the same drift
            results[name].append(per_op_us(fn, args.iterations))
    width = max(len(name) for name in results)
    print(f"{'operation':<{width}}  median µs/op  (rounds)")
    for name, samples in results.items():
        rounds = ", ".join(f"{s:.1f}" for s in samples)
        print(f"{name:<{width}}  {statistics.median(samples):10.2f}  ({rounds})")


if __name__ == "__main__":
    main()
