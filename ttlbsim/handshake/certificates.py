"""Real X.509 certificate chains, signed for real.

:func:`build_chain` returns the certificates a server (or, for mutual TLS, a client) sends: the
leaf plus ``chain - 1`` intermediates; a root is generated and signs the last intermediate but is
not sent (RFC 8446 §4.4.2). The leaf uses `sig`; intermediates and the root use `intermediate_sig`
(default `sig`), so mixed chains such as an ML-DSA-44 leaf under ML-DSA-65 CAs are possible.

Certificates are built with `cryptography.x509`. Where `cryptography` cannot handle a key (SLH-DSA),
the certificate is built with a placeholder Ed25519 key, then re-wrapped: the TBSCertificate gets the
genuine SubjectPublicKeyInfo and signature AlgorithmIdentifier (FIPS 205 OIDs, RFC 9909), and the
re-built TBS bytes are signed with the genuine key.

Profiles:

- ``minimal``: CN, subjectAltName (leaf), basicConstraints — a quick lab chain.
- ``webpki``: what a public CA issues: keyUsage, extendedKeyUsage, subject/authority key
  identifiers, authorityInfoAccess (OCSP + caIssuers), cRLDistributionPoints, certificatePolicies,
  two embedded SCTs (leaf; each signed by a local ECDSA P-256 "log"), C/O/CN issuer names of
  typical length.

Sizes are deterministic: serial numbers are 16 bytes derived from the names, validity dates are
fixed, and variable-length DER ECDSA signatures (certificates, SCTs) are re-drawn until they have
their most likely length (71 B for P-256, 103 B for P-384), so a regenerated chain has exactly the
same DER sizes.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from . import der
from .algorithms import RawKeyPair, Sig, get_sig, public_key_bytes, signing_key
from ..errors import InvalidValue

PROFILES = ("minimal", "webpki")
_NOT_BEFORE = datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc)
_NOT_AFTER = {"leaf": datetime.datetime(2025, 8, 30, tzinfo=datetime.timezone.utc),
              "ca": datetime.datetime(2030, 6, 1, tzinfo=datetime.timezone.utc)}
_SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


@dataclass(frozen=True)
class Chain:
    """A certificate chain as sent: `certs` (DER, leaf first), the unsent `root`, the leaf's private
    key, and the algorithm of every signature a peer checks when it validates the chain
    (`signatures[i]` signed `certs[i]`; the last one is the root's signature over the top cert)."""

    certs: tuple[bytes, ...]
    root: bytes
    leaf_key: Any
    leaf_sig: str
    signatures: tuple[str, ...]

    @property
    def der_bytes(self) -> int:
        return sum(len(c) for c in self.certs)

    def chain_pem(self) -> bytes:
        return b"".join(x509.load_der_x509_certificate(c).public_bytes(serialization.Encoding.PEM)
                        for c in self.certs)

    def key_pem(self) -> bytes:
        if isinstance(self.leaf_key, RawKeyPair):
            raise InvalidValue("sig", self.leaf_sig, "an algorithm with a PKCS#8 encoding in cryptography")
        return self.leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())


# --------------------------------------------------------------------------- names and extensions

def _name(profile: str, role: str, level: int, chain: int) -> x509.Name:
    """level 0 = leaf, 1..chain-1 = intermediates, chain = root."""
    if profile == "minimal":
        if level == 0:
            cn = "localhost" if role == "server" else "client"
        elif level == chain:
            cn = "Test Root CA"
        else:
            cn = f"Test Intermediate CA {level}"
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    if level == 0:
        cn = "www.example.com" if role == "server" else "client-4711.devices.example.com"
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cn = "Example Trust Root CA X1" if level == chain else f"Example Trust TLS Issuing CA 2025 R{level}"
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Trust Services LLC"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_id(key: Any) -> bytes:
    return hashlib.sha1(public_key_bytes(key)).digest()


def _scts(leaf_tbs_seed: bytes) -> bytes:
    """A TLS-encoded SignedCertificateTimestampList (RFC 6962 §3.3) with two SCTs, each signed by a
    local ECDSA P-256 log key over the seed; what a public CA embeds."""
    p256 = get_sig("ecdsa-p256")
    items = []
    for i in (1, 2):
        log = signing_key("ecdsa-p256", f"ct-log-{i}")
        log_id = hashlib.sha256(public_key_bytes(log)).digest()
        timestamp = (1748736000000 + i).to_bytes(8, "big")
        signature = p256.sign(log, b"\x00\x00" + timestamp + leaf_tbs_seed)
        sct = (b"\x00" + log_id + timestamp + b"\x00\x00" + b"\x04\x03"
               + len(signature).to_bytes(2, "big") + signature)
        items.append(len(sct).to_bytes(2, "big") + sct)
    body = b"".join(items)
    return len(body).to_bytes(2, "big") + body


def _extensions(b: x509.CertificateBuilder, *, profile: str, role: str, level: int, chain: int, sig: str,
                subject_key: Any, issuer_key: Any) -> x509.CertificateBuilder:
    is_ca = level > 0
    b = b.add_extension(x509.BasicConstraints(ca=is_ca, path_length=(chain - 1 - level) if 0 < level < chain else None),
                        critical=True)
    if level == 0:
        dns = ["localhost"] if profile == "minimal" else ["www.example.com", "example.com"]
        if role == "client":
            dns = ["client"] if profile == "minimal" else ["client-4711.devices.example.com"]
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    if profile == "minimal":
        return b
    rsa_leaf = level == 0 and sig.startswith("rsa")
    b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=rsa_leaf,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=is_ca,
                                      crl_sign=is_ca, encipher_only=False, decipher_only=False), critical=True)
    eku = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    if level == 0 and role == "client":
        eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
    b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    b = b.add_extension(x509.SubjectKeyIdentifier(_key_id(subject_key)), critical=False)
    if level < chain:
        b = b.add_extension(x509.AuthorityKeyIdentifier(_key_id(issuer_key), None, None), critical=False)
        issuer_file = "ExampleTrustRootCAX1" if level + 1 == chain else f"ExampleTrustTLSIssuingCA2025R{level + 1}"
        aia = [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                      x509.UniformResourceIdentifier(f"http://crt.example-trust.com/{issuer_file}.crt"))]
        if level == 0:
            aia.insert(0, x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                                 x509.UniformResourceIdentifier("http://ocsp.example-trust.com")))
        b = b.add_extension(x509.AuthorityInformationAccess(aia), critical=False)
        b = b.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(f"http://crl.example-trust.com/{issuer_file}.crl")], None, None, None)]),
            critical=False)
        policies = [x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.1"), None)]
        if is_ca:
            policies = [x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"),
                                               ["https://www.example-trust.com/repository/cps"])]
        b = b.add_extension(x509.CertificatePolicies(policies), critical=False)
    if level == 0 and role == "server":
        seed = hashlib.sha256(public_key_bytes(subject_key)).digest()
        b = b.add_extension(x509.UnrecognizedExtension(_SCT_OID, der.octet_string(_scts(seed))), critical=False)
    return b


# --------------------------------------------------------------------------- signing

_PLACEHOLDER = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"ttlbsim placeholder").digest())


def _cert_hash(sig: Sig) -> hashes.HashAlgorithm | None:
    if sig.name.startswith("rsa") or sig.name == "ecdsa-p256":
        return hashes.SHA256()
    if sig.name == "ecdsa-p384":
        return hashes.SHA384()
    return None


def _sign_tbs(sig: Sig, key: Any, tbs: bytes) -> bytes:
    """The certificate signature (sha256WithRSAEncryption for RSA, as public CAs use; ECDSA with the
    curve's hash; pure Ed25519 / ML-DSA / SLH-DSA)."""
    if sig.name.startswith("rsa"):
        return key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    if sig.name.startswith("ecdsa"):
        return sig.sign(key, tbs)  # canonical length
    return sig.sign_raw(key, tbs)


def _spki(sig: Sig, key: Any) -> bytes:
    if isinstance(key, RawKeyPair):
        return der.sequence(der.algorithm_identifier(sig.oid), der.bit_string(key.public))
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _serial(*parts: str) -> int:
    """16 bytes, positive, first byte 0x10-0x7f: the same length every time."""
    v = int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:16], "big")
    return (v & ((1 << 124) - 1)) | (1 << 124)


def _certificate(*, profile: str, role: str, level: int, chain: int, subject_sig: Sig, subject_key: Any,
                 issuer_sig: Sig, issuer_key: Any) -> bytes:
    b = (x509.CertificateBuilder()
         .subject_name(_name(profile, role, level, chain))
         .issuer_name(_name(profile, role, min(level + 1, chain), chain))
         .serial_number(_serial(profile, role, str(level), str(chain), subject_sig.name, issuer_sig.name))
         .not_valid_before(_NOT_BEFORE)
         .not_valid_after(_NOT_AFTER["leaf" if level == 0 else "ca"])
         .public_key(_PLACEHOLDER.public_key() if not subject_sig.native else subject_key.public_key()))
    b = _extensions(b, profile=profile, role=role, level=level, chain=chain, sig=subject_sig.name,
                    subject_key=subject_key, issuer_key=issuer_key)
    if subject_sig.native and issuer_sig.native:
        for _ in range(64):
            cert = b.sign(issuer_key, _cert_hash(issuer_sig))
            if issuer_sig.canonical_len is None or len(cert.signature) == issuer_sig.canonical_len:
                break
        return cert.public_bytes(serialization.Encoding.DER)
    # re-wrap: placeholder-signed certificate -> genuine SPKI, AlgorithmIdentifier and signature
    placeholder = b.sign(_PLACEHOLDER, None)
    tbs_parts = der.children(placeholder.tbs_certificate_bytes)
    alg_id = der.algorithm_identifier(issuer_sig.oid, null_params=issuer_sig.name.startswith("rsa"))
    tbs_parts[2] = alg_id
    tbs_parts[6] = _spki(subject_sig, subject_key)
    tbs = der.sequence(*tbs_parts)
    return der.sequence(tbs, alg_id, der.bit_string(_sign_tbs(issuer_sig, issuer_key, tbs)))


@functools.lru_cache(maxsize=None)
def build_chain(sig: str, chain: int = 2, intermediate_sig: str | None = None, profile: str = "minimal",
                role: str = "server") -> Chain:
    """The chain a `role` ("server" or "client") sends: leaf (`sig`) + ``chain - 1`` intermediates
    (`intermediate_sig`, default `sig`), signed up to an unsent root of `intermediate_sig`."""
    if profile not in PROFILES:
        raise InvalidValue("cert_profile", profile, "one of " + ", ".join(PROFILES))
    if isinstance(chain, bool) or not isinstance(chain, int) or chain < 1:
        raise InvalidValue("chain", chain, "a whole number >= 1")
    leaf_sig = get_sig(sig)
    ca_sig = get_sig(intermediate_sig or sig)
    sigs = [leaf_sig] + [ca_sig] * chain  # level -> algorithm; level `chain` is the root
    keys = [signing_key(s.name, f"{role}-{level}") for level, s in enumerate(sigs)]
    certs = tuple(_certificate(profile=profile, role=role, level=level, chain=chain, subject_sig=sigs[level],
                               subject_key=keys[level], issuer_sig=sigs[level + 1], issuer_key=keys[level + 1])
                  for level in range(chain))
    root = _certificate(profile=profile, role=role, level=chain, chain=chain, subject_sig=ca_sig,
                        subject_key=keys[chain], issuer_sig=ca_sig, issuer_key=keys[chain])
    return Chain(certs=certs, root=root, leaf_key=keys[0], leaf_sig=leaf_sig.name,
                 signatures=tuple(s.name for s in sigs[1:]))


def resize(certs: tuple[bytes, ...], total: int) -> tuple[bytes, ...]:
    """The chain-size override: `total` DER bytes distributed over the certificates in proportion to
    their genuine sizes (largest remainder, at least 1 byte each); each certificate's bytes are its
    genuine DER repeated or truncated to the new length, so compression still sees certificate-like
    data. Only sizes are meaningful afterwards."""
    if total < len(certs):
        raise InvalidValue("chain_bytes", total, f"at least 1 byte per certificate (>= {len(certs)})")
    genuine = sum(len(c) for c in certs)
    exact = [total * len(c) / genuine for c in certs]
    sizes = [max(1, int(e)) for e in exact]
    order = sorted(range(len(certs)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    i = 0
    while sum(sizes) < total:
        sizes[order[i % len(order)]] += 1
        i += 1
    while sum(sizes) > total:
        j = max(range(len(sizes)), key=lambda k: sizes[k])
        sizes[j] -= 1
    return tuple((c * (n // len(c) + 1))[:n] for c, n in zip(certs, sizes))


__all__ = ["Chain", "PROFILES", "build_chain", "resize"]
