"""The genuine primitives behind every key-exchange group and signature algorithm ttlbsim knows.

Groups (:data:`GROUPS`) produce real key shares: the client share by running key generation, the
server share by running encapsulation (ECDH: an ephemeral key pair; ML-KEM: encaps) against the
client share. Hybrids follow draft-ietf-tls-ecdhe-mlkem: X25519MLKEM768 puts the ML-KEM part first
(1216 / 1120 B), SecP256r1MLKEM768 and SecP384r1MLKEM1024 put the uncompressed ECDH point first.

Signature algorithms (:data:`SIGNATURES`) hold a key generator and sign/verify functions; RSA,
ECDSA, Ed25519 and ML-DSA keys are `cryptography` objects (so `cryptography.x509` can use them),
SLH-DSA keys are :class:`RawKeyPair` s over `pqcrypto`.

:func:`operation` returns a zero-argument callable that performs exactly one operation
("kem.keygen:<group>", "kem.encaps:<group>", "kem.decaps:<group>", "sign:<sig>", "verify:<sig>")
with every set-up done beforehand, so the compute model can time it. :func:`size_table` is the
``ttlbsim handshake --list`` table, measured from real objects.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any, Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa, x25519
from pqcrypto.kem import ml_kem_512
from pqcrypto.sign import (slh_dsa_sha2_128f, slh_dsa_sha2_128s, slh_dsa_sha2_192f, slh_dsa_sha2_192s,
                           slh_dsa_sha2_256f, slh_dsa_sha2_256s)

from . import names
from ..errors import InvalidValue

# --------------------------------------------------------------------------- key exchange


@dataclass(frozen=True)
class Kem:
    """One key-exchange component: keygen() -> (share, secret state); encaps(share) -> (ct, ss);
    decaps(state, ct) -> ss. For ECDH "encaps" is the server's ephemeral key + ECDH."""

    name: str
    keygen: Callable[[], tuple[bytes, Any]]
    encaps: Callable[[bytes], tuple[bytes, bytes]]
    decaps: Callable[[Any, bytes], bytes]


def _x25519() -> Kem:
    def keygen():
        k = x25519.X25519PrivateKey.generate()
        return k.public_key().public_bytes_raw(), k

    def encaps(share):
        k = x25519.X25519PrivateKey.generate()
        return k.public_key().public_bytes_raw(), k.exchange(x25519.X25519PublicKey.from_public_bytes(share))

    def decaps(k, ct):
        return k.exchange(x25519.X25519PublicKey.from_public_bytes(ct))

    return Kem("x25519", keygen, encaps, decaps)


def _ecdh(curve: type[ec.EllipticCurve], name: str) -> Kem:
    fmt = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def keygen():
        k = ec.generate_private_key(curve())
        return k.public_key().public_bytes(*fmt), k

    def encaps(share):
        k = ec.generate_private_key(curve())
        peer = ec.EllipticCurvePublicKey.from_encoded_point(curve(), share)
        return k.public_key().public_bytes(*fmt), k.exchange(ec.ECDH(), peer)

    def decaps(k, ct):
        return k.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(curve(), ct))

    return Kem(name, keygen, encaps, decaps)


def _mlkem_cryptography(priv: Any, pub: Any, name: str) -> Kem:
    def keygen():
        k = priv.generate()
        return k.public_key().public_bytes_raw(), k

    def encaps(share):
        ss, ct = pub.from_public_bytes(share).encapsulate()
        return ct, ss

    def decaps(k, ct):
        return k.decapsulate(ct)

    return Kem(name, keygen, encaps, decaps)


def _mlkem512() -> Kem:
    def keygen():
        pk, sk = ml_kem_512.keygen()
        return pk, sk

    return Kem("MLKEM512", keygen, lambda share: ml_kem_512.encaps(share), lambda sk, ct: ml_kem_512.decaps(sk, ct))


def _hybrid(first: Kem, second: Kem, name: str) -> Kem:
    """Concatenation combiner of draft-ietf-tls-ecdhe-mlkem: shares, ciphertexts and secrets are
    the two components' values concatenated in `first`, `second` order."""

    def keygen():
        (a, ka), (b, kb) = first.keygen(), second.keygen()
        return a + b, (ka, kb)

    def encaps(share):
        n = _SHARE_LEN[first.name]
        ca, sa = first.encaps(share[:n])
        cb, sb = second.encaps(share[n:])
        return ca + cb, sa + sb

    def decaps(state, ct):
        ka, kb = state
        n = _CT_LEN[first.name]
        return first.decaps(ka, ct[:n]) + second.decaps(kb, ct[n:])

    return Kem(name, keygen, encaps, decaps)


_X25519 = _x25519()
_P256 = _ecdh(ec.SECP256R1, "secp256r1")
_P384 = _ecdh(ec.SECP384R1, "secp384r1")
_MLKEM768 = _mlkem_cryptography(mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey, "MLKEM768")
_MLKEM1024 = _mlkem_cryptography(mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey, "MLKEM1024")
# component share / ciphertext lengths, needed to split a hybrid (FIPS 203 Table 3; SEC 1 points)
_SHARE_LEN = {"x25519": 32, "secp256r1": 65, "secp384r1": 97, "MLKEM768": 1184, "MLKEM1024": 1568}
_CT_LEN = {"x25519": 32, "secp256r1": 65, "secp384r1": 97, "MLKEM768": 1088, "MLKEM1024": 1568}

#: canonical group name -> Kem
GROUPS: dict[str, Kem] = {
    "x25519": _X25519,
    "secp256r1": _P256,
    "secp384r1": _P384,
    "X25519MLKEM768": _hybrid(_MLKEM768, _X25519, "X25519MLKEM768"),
    "SecP256r1MLKEM768": _hybrid(_P256, _MLKEM768, "SecP256r1MLKEM768"),
    "SecP384r1MLKEM1024": _hybrid(_P384, _MLKEM1024, "SecP384r1MLKEM1024"),
    "MLKEM512": _mlkem512(),
    "MLKEM768": _MLKEM768,
    "MLKEM1024": _MLKEM1024,
}
assert set(GROUPS) == set(names.GROUPS)


def key_share(group: str) -> tuple[bytes, bytes]:
    """(client key share, server key share) for `group`, produced by real keygen and encaps."""
    kem = GROUPS[names.normalize_group(group)]
    client, state = kem.keygen()
    server, secret = kem.encaps(client)
    assert kem.decaps(state, server) == secret
    return client, server


# --------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class RawKeyPair:
    """A key pair of an algorithm `cryptography` cannot sign with (SLH-DSA): raw FIPS 205 bytes."""

    algorithm: str
    public: bytes
    secret: bytes = b""


@dataclass(frozen=True)
class Sig:
    """A signature algorithm.

    - `oid`: the X.509 AlgorithmIdentifier OID (dotted) of signatures *made* by this key.
    - `scheme`: the TLS SignatureScheme code point used in CertificateVerify.
    - `native`: True when `cryptography.x509` can sign with / embed the key.
    """

    name: str
    scheme: int
    oid: str
    native: bool
    generate: Callable[[], Any]
    sign_raw: Callable[[Any, bytes], bytes]
    verify_raw: Callable[[Any, bytes, bytes], None]
    canonical_len: int | None = None  # signature length variable-length encodings are retried to

    def sign(self, key: Any, data: bytes) -> bytes:
        """Sign `data`; DER ECDSA signatures are re-drawn until they have the canonical (most likely)
        length so sizes are stable across runs."""
        for _ in range(64):
            s = self.sign_raw(key, data)
            if self.canonical_len is None or len(s) == self.canonical_len:
                return s
        return s  # pragma: no cover - probability 2**-64

    def verify(self, key: Any, data: bytes, signature: bytes) -> None:
        self.verify_raw(key, data, signature)


def _pss() -> padding.PSS:
    # TLS 1.3 rsa_pss_rsae_sha256: salt length = digest length (RFC 8446 §4.2.3)
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def _rsa(bits: int) -> Sig:
    return Sig(f"rsa{bits}", 0x0804, "1.2.840.113549.1.1.11", True,
               lambda: rsa.generate_private_key(65537, bits),
               lambda k, d: k.sign(d, _pss(), hashes.SHA256()),
               lambda k, d, s: k.public_key().verify(s, d, _pss(), hashes.SHA256()))


def _ecdsa(curve: type[ec.EllipticCurve], h: type[hashes.HashAlgorithm], name: str, scheme: int, oid: str,
           coord: int) -> Sig:
    # DER ECDSA-Sig-Value: SEQUENCE{INTEGER r, INTEGER s}; r and s each need a leading zero half
    # the time, so the most likely length is 2 + 2 * (2 + coord) + 1.
    return Sig(name, scheme, oid, True, lambda: ec.generate_private_key(curve()),
               lambda k, d: k.sign(d, ec.ECDSA(h())),
               lambda k, d, s: k.public_key().verify(s, d, ec.ECDSA(h())),
               canonical_len=2 + 2 * (2 + coord) + 1)


def _pure(name: str, scheme: int, oid: str, generate: Callable[[], Any]) -> Sig:
    return Sig(name, scheme, oid, True, generate, lambda k, d: k.sign(d),
               lambda k, d, s: k.public_key().verify(s, d))


def _slhdsa(name: str, module: Any, oid: str) -> Sig:
    def generate():
        pk, sk = module.keygen()
        return RawKeyPair(name, pk, sk)

    def verify(k, d, s):
        module.verify(k.public, d, s)

    return Sig(name, names.SIGNATURES[name], oid, False, generate, lambda k, d: module.sign(k.secret, d), verify)


_NIST_SIG = "2.16.840.1.101.3.4.3."  # csor sigAlgs arc (FIPS 204 / FIPS 205 OIDs, RFC 9881/9909)

#: canonical signature name -> Sig
SIGNATURES: dict[str, Sig] = {
    "rsa2048": _rsa(2048),
    "rsa3072": _rsa(3072),
    "rsa4096": _rsa(4096),
    "ecdsa-p256": _ecdsa(ec.SECP256R1, hashes.SHA256, "ecdsa-p256", 0x0403, "1.2.840.10045.4.3.2", 32),
    "ecdsa-p384": _ecdsa(ec.SECP384R1, hashes.SHA384, "ecdsa-p384", 0x0503, "1.2.840.10045.4.3.3", 48),
    "ed25519": _pure("ed25519", 0x0807, "1.3.101.112", ed25519.Ed25519PrivateKey.generate),
    "mldsa44": _pure("mldsa44", 0x0904, _NIST_SIG + "17", mldsa.MLDSA44PrivateKey.generate),
    "mldsa65": _pure("mldsa65", 0x0905, _NIST_SIG + "18", mldsa.MLDSA65PrivateKey.generate),
    "mldsa87": _pure("mldsa87", 0x0906, _NIST_SIG + "19", mldsa.MLDSA87PrivateKey.generate),
    "slhdsa-sha2-128s": _slhdsa("slhdsa-sha2-128s", slh_dsa_sha2_128s, _NIST_SIG + "20"),
    "slhdsa-sha2-128f": _slhdsa("slhdsa-sha2-128f", slh_dsa_sha2_128f, _NIST_SIG + "21"),
    "slhdsa-sha2-192s": _slhdsa("slhdsa-sha2-192s", slh_dsa_sha2_192s, _NIST_SIG + "22"),
    "slhdsa-sha2-192f": _slhdsa("slhdsa-sha2-192f", slh_dsa_sha2_192f, _NIST_SIG + "23"),
    "slhdsa-sha2-256s": _slhdsa("slhdsa-sha2-256s", slh_dsa_sha2_256s, _NIST_SIG + "24"),
    "slhdsa-sha2-256f": _slhdsa("slhdsa-sha2-256f", slh_dsa_sha2_256f, _NIST_SIG + "25"),
}
assert set(SIGNATURES) == set(names.SIGNATURES)


def get_sig(name: str) -> Sig:
    return SIGNATURES[names.normalize_signature(name)]


@functools.lru_cache(maxsize=None)
def signing_key(sig: str, role: str = "leaf") -> Any:
    """A private key of algorithm `sig` for `role` (e.g. "leaf", "ca1", "root"), generated once per
    process: RSA-4096 and SLH-DSA key generation are slow and the key bytes do not change sizes."""
    return get_sig(sig).generate()


def public_key_bytes(key: Any) -> bytes:
    """The raw public key (RSA: the DER RSAPublicKey; EC: the uncompressed point)."""
    if isinstance(key, RawKeyPair):
        return key.public
    pub = key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return pub.public_bytes_raw()


# --------------------------------------------------------------------------- timing and listing

_TIMING_MESSAGE = hashlib.sha384(b"ttlbsim CertificateVerify content").digest() * 3


def operation(op: str) -> Callable[[], object]:
    """A callable that performs exactly the operation `op` ("kem.keygen:<group>",
    "kem.encaps:<group>", "kem.decaps:<group>", "sign:<sig>", "verify:<sig>"); inputs (keys,
    shares, ciphertexts, a signature) are prepared before it is returned."""
    kind, _, alg = op.partition(":")
    if kind.startswith("kem."):
        kem = GROUPS[names.normalize_group(alg, "operation")]
        share, state = kem.keygen()
        ct, _ss = kem.encaps(share)
        calls = {"kem.keygen": kem.keygen, "kem.encaps": lambda: kem.encaps(share),
                 "kem.decaps": lambda: kem.decaps(state, ct)}
        if kind in calls:
            return calls[kind]
    elif kind in ("sign", "verify"):
        sig = SIGNATURES[names.normalize_signature(alg, "operation")]
        key = signing_key(sig.name, "timing")
        if kind == "sign":
            return lambda: sig.sign_raw(key, _TIMING_MESSAGE)
        signature = sig.sign(key, _TIMING_MESSAGE)
        return lambda: sig.verify(key, _TIMING_MESSAGE, signature)
    raise InvalidValue("operation", op, "kem.keygen|kem.encaps|kem.decaps:<group> or sign|verify:<sig>")


@functools.lru_cache(maxsize=None)
def size_table() -> tuple[dict, ...]:
    """One row per algorithm with sizes measured from real objects (bytes)."""
    rows: list[dict] = []
    for name, kem in GROUPS.items():
        client, server = key_share(name)
        rows.append({"kind": "kex", "name": name, "code_point": f"0x{names.GROUPS[name]:04X}",
                     "public_key": len(client), "client_share": len(client), "server_share": len(server),
                     "ciphertext": len(server), "signature": None})
    for name, sig in SIGNATURES.items():
        key = signing_key(name, "leaf")
        rows.append({"kind": "sig", "name": name, "code_point": f"0x{sig.scheme:04X}",
                     "public_key": len(public_key_bytes(key)), "client_share": None, "server_share": None,
                     "ciphertext": None, "signature": len(sig.sign(key, _TIMING_MESSAGE))})
    return tuple(rows)


__all__ = ["GROUPS", "SIGNATURES", "Kem", "Sig", "RawKeyPair", "key_share", "get_sig", "signing_key",
           "public_key_bytes", "operation", "size_table"]
