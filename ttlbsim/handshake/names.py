"""Canonical names of the key-exchange groups and signature algorithms ttlbsim knows, with the
usual aliases. Lookup is case-insensitive and ignores '-', '_' and spaces.

Group code points are the IANA TLS Supported Groups registry values; signature schemes are the
IANA TLS SignatureScheme values used in CertificateVerify (RFC 8446 §4.2.3,
draft-ietf-tls-mldsa, draft-reddy-tls-slhdsa)."""

from __future__ import annotations

from ..errors import InvalidValue

#: canonical group name -> IANA NamedGroup code point
GROUPS: dict[str, int] = {
    "x25519": 0x001D,
    "secp256r1": 0x0017,
    "secp384r1": 0x0018,
    "X25519MLKEM768": 0x11EC,
    "SecP256r1MLKEM768": 0x11EB,
    "SecP384r1MLKEM1024": 0x11ED,
    "MLKEM512": 0x0200,
    "MLKEM768": 0x0201,
    "MLKEM1024": 0x0202,
}

_GROUP_ALIASES: dict[str, str] = {
    "x25519": "x25519", "ecdhx25519": "x25519", "curve25519": "x25519",
    "secp256r1": "secp256r1", "p256": "secp256r1", "prime256v1": "secp256r1", "ecdhp256": "secp256r1",
    "secp384r1": "secp384r1", "p384": "secp384r1", "ecdhp384": "secp384r1",
    "x25519mlkem768": "X25519MLKEM768", "x25519kyber768": "X25519MLKEM768",
    "secp256r1mlkem768": "SecP256r1MLKEM768", "p256mlkem768": "SecP256r1MLKEM768",
    "secp384r1mlkem1024": "SecP384r1MLKEM1024", "p384mlkem1024": "SecP384r1MLKEM1024",
    "mlkem512": "MLKEM512", "kyber512": "MLKEM512",
    "mlkem768": "MLKEM768", "kyber768": "MLKEM768",
    "mlkem1024": "MLKEM1024", "kyber1024": "MLKEM1024",
}

#: canonical signature algorithm name -> IANA SignatureScheme code point used in CertificateVerify
SIGNATURES: dict[str, int] = {
    "rsa2048": 0x0804,  # rsa_pss_rsae_sha256 (what OpenSSL picks for RSA keys in TLS 1.3)
    "rsa3072": 0x0804,
    "rsa4096": 0x0804,
    "ecdsa-p256": 0x0403,  # ecdsa_secp256r1_sha256
    "ecdsa-p384": 0x0503,  # ecdsa_secp384r1_sha384
    "ed25519": 0x0807,
    "mldsa44": 0x0904,
    "mldsa65": 0x0905,
    "mldsa87": 0x0906,
    "slhdsa-sha2-128s": 0x0911,
    "slhdsa-sha2-128f": 0x0912,
    "slhdsa-sha2-192s": 0x0913,
    "slhdsa-sha2-192f": 0x0914,
    "slhdsa-sha2-256s": 0x0915,
    "slhdsa-sha2-256f": 0x0916,
}

_SIG_ALIASES: dict[str, str] = {
    "rsa": "rsa2048", "rsa2048": "rsa2048", "rsa3072": "rsa3072", "rsa4096": "rsa4096",
    "ecdsap256": "ecdsa-p256", "p256": "ecdsa-p256", "ecdsasecp256r1": "ecdsa-p256", "ecdsa": "ecdsa-p256",
    "ecdsap384": "ecdsa-p384", "p384": "ecdsa-p384", "ecdsasecp384r1": "ecdsa-p384",
    "ed25519": "ed25519",
    "mldsa44": "mldsa44", "dilithium2": "mldsa44",
    "mldsa65": "mldsa65", "dilithium3": "mldsa65",
    "mldsa87": "mldsa87", "dilithium5": "mldsa87",
}
for _name in [n for n in SIGNATURES if n.startswith("slhdsa")]:
    _SIG_ALIASES[_name.replace("-", "")] = _name
    _SIG_ALIASES[_name.replace("-", "").replace("slhdsa", "sphincs")] = _name


def _key(name: str) -> str:
    return str(name).lower().replace("-", "").replace("_", "").replace(" ", "")


def normalize_group(name: str, field: str = "kex") -> str:
    """Canonical group name for `name`; raises InvalidValue for an unknown one."""
    try:
        return _GROUP_ALIASES[_key(name)]
    except KeyError:
        raise InvalidValue(field, name, "one of " + ", ".join(GROUPS)) from None


def normalize_signature(name: str, field: str = "sig") -> str:
    """Canonical signature algorithm name for `name`; raises InvalidValue for an unknown one."""
    try:
        return _SIG_ALIASES[_key(name)]
    except KeyError:
        raise InvalidValue(field, name, "one of " + ", ".join(SIGNATURES)) from None
