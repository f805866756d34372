"""TLS 1.3 handshake messages encoded with aioquic's encoders (`aioquic.tls.push_*`).

aioquic writes code points as plain integers, so the post-quantum groups (0x11EC, 0x0201, ...)
and signature schemes (0x0904, ...) pass through unchanged; extensions aioquic has no field for
(renegotiation_info, ec_point_formats, compress_certificate, ALPS, GREASE ECH, ...) go through its
`other_extensions`. Only two messages aioquic lacks are encoded here, with aioquic's
`push_block` / `push_opaque` helpers: CompressedCertificate (RFC 8879, type 25) and the
HelloRetryRequest key_share (a bare NamedGroup, RFC 8446 §4.2.8).

Client profiles (what goes into the ClientHello):

- ``openssl``: OpenSSL 3.5+/4.0's client with its defaults (the OpenSSL 4.0 bundled with
  `cryptography`, captured): TLS 1.2 + 1.3, 30 cipher suites, renegotiation_info, ec_point_formats,
  supported_groups (OpenSSL's default list with the chosen group first), session_ticket,
  encrypt_then_mac, extended_master_secret, 27 signature schemes, supported_versions,
  psk_key_exchange_modes, key_share; no SNI, no ALPN. Default key shares: 2 (OpenSSL's default
  offers X25519MLKEM768 and X25519).
- ``browser``: a current Chrome: GREASE cipher suite / extensions / group / version / key share,
  SNI, ALPN h2 + http/1.1, status_request, signed_certificate_timestamp, compress_certificate
  (brotli), application_settings, a GREASE encrypted_client_hello, 8 signature schemes, groups
  X25519MLKEM768, x25519, secp256r1, secp384r1; default key shares: 2 (X25519MLKEM768 + x25519).

In both profiles the chosen group is the first key share, the others follow the profile's default
share order, and a signature scheme the profile lacks (for example ML-DSA in the browser profile,
SLH-DSA in OpenSSL's) is appended: the client must offer it for the server to use it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import zlib
from dataclasses import dataclass

import brotli
import zstandard
from aioquic.buffer import Buffer
from aioquic.tls import (Certificate, CertificateRequest, CertificateVerify, ClientHello, EncryptedExtensions,
                         Finished, NewSessionTicket, OfferedPsks, ServerHello, push_block, push_certificate,
                         push_certificate_request, push_certificate_verify, push_client_hello,
                         push_encrypted_extensions, push_finished, push_new_session_ticket, push_opaque,
                         push_server_hello)

from .names import GROUPS

TLS13 = 0x0304
TLS12 = 0x0303
AES_256_GCM_SHA384 = 0x1302  # OpenSSL's server picks the first suite of its default list
HASH_LEN = 48  # SHA-384: Finished verify_data, PSK binders
HELLO_RETRY_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()  # RFC 8446 §4.1.3

# extension code points aioquic's ExtensionType lacks
EXT_STATUS_REQUEST = 5
EXT_EC_POINT_FORMATS = 11
EXT_SCT = 18
EXT_ENCRYPT_THEN_MAC = 22
EXT_EXTENDED_MASTER_SECRET = 23
EXT_COMPRESS_CERTIFICATE = 27
EXT_SESSION_TICKET = 35
EXT_KEY_SHARE = 51
EXT_APPLICATION_SETTINGS = 0x44CD
EXT_ECH = 0xFE0D
EXT_RENEGOTIATION_INFO = 0xFF01
COMPRESSED_CERTIFICATE = 25  # handshake type, RFC 8879
COMPRESSION_ALGORITHMS = {"zlib": 1, "brotli": 2, "zstd": 3}

# OpenSSL 4.0 client defaults (captured from the OpenSSL bundled with cryptography)
OPENSSL_SUITES = tuple(int(h, 16) for h in (
    "1302 1303 1301 c02c c030 009f cca9 cca8 ccaa c02b c02f 009e c024 c028 006b c023 c027 0067 c00a c014 "
    "0039 c009 c013 0033 009d 009c 003d 003c 0035 002f").split())
OPENSSL_SIGALGS = tuple(int(h, 16) for h in (
    "0905 0906 0904 0403 0503 0603 0807 0808 081a 081b 081c 0809 080a 080b 0804 0805 0806 0401 0501 0601 "
    "0303 0301 0302 0402 0502 0602").split()) + (0x0708,)
#: what OpenSSL's server lists in a TLS 1.3 CertificateRequest (no SHA-224 / DSA schemes)
OPENSSL_TLS13_SIGALGS = tuple(a for a in OPENSSL_SIGALGS if a not in (0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602))
OPENSSL_GROUPS = (0x11EC, 0x11EB, 0x11EE, 0x001D, 0x0017, 0x001E, 0x0018, 0x0019, 0x0029, 0x0100, 0x0101)
# Chrome (2025)
GREASE = 0x0A0A
CHROME_SUITES = (GREASE, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014,
                 0x009C, 0x009D, 0x002F, 0x0035)
CHROME_SIGALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)
CHROME_GROUPS = (GREASE, 0x11EC, 0x001D, 0x0017, 0x0018)
CHROME_ECH_PAYLOAD = 208  # GREASE ECH payload length Chrome pads to (one of 144/176/208/240 + ...)
SERVER_NAME = "www.example.com"

#: the order in which a profile adds key shares after the chosen group
DEFAULT_SHARE_ORDER = ("X25519MLKEM768", "x25519", "secp256r1", "secp384r1")
DEFAULT_KEY_SHARES = {"openssl": 2, "browser": 2}


def _encode(push, message) -> bytes:
    buf = Buffer(capacity=1 << 20)
    push(buf, message)
    return buf.data


def share_groups(kex: str, count: int, exclude: str | None = None) -> list[str]:
    """The groups the client sends key shares for: `kex` first (unless excluded, as in the first
    ClientHello of a HelloRetryRequest), then the profile's default share order."""
    order = [kex] + [g for g in DEFAULT_SHARE_ORDER if g != kex]
    return [g for g in order if g != exclude][:count]


@dataclass(frozen=True)
class HelloOptions:
    """What varies the ClientHello: profile, the offered groups (kex first), the key shares
    (group name, share bytes), signature scheme to make sure is offered, PSK, compression."""

    profile: str
    kex: str
    shares: tuple[tuple[str, bytes], ...]
    scheme: int
    psk_identity_len: int = 0
    compress: str | None = None


def client_hello(o: HelloOptions) -> bytes:
    kex_code = GROUPS[o.kex]
    shares = [(GROUPS[g], data) for g, data in o.shares]
    compress_algs = [COMPRESSION_ALGORITHMS[o.compress]] if o.compress else []
    if o.profile == "openssl":
        groups = [kex_code] + [g for g in OPENSSL_GROUPS if g != kex_code]
        sigalgs = list(OPENSSL_SIGALGS) + ([o.scheme] if o.scheme not in OPENSSL_SIGALGS else [])
        hello = ClientHello(random=os.urandom(32), legacy_session_id=os.urandom(32),
                            cipher_suites=list(OPENSSL_SUITES), legacy_compression_methods=[0],
                            key_share=shares, psk_key_exchange_modes=[1], signature_algorithms=sigalgs,
                            supported_groups=groups, supported_versions=[TLS13, TLS12])
        hello.other_extensions = [(EXT_RENEGOTIATION_INFO, b"\x00"), (EXT_EC_POINT_FORMATS, b"\x01\x00"),
                                  (EXT_SESSION_TICKET, b""), (EXT_ENCRYPT_THEN_MAC, b""),
                                  (EXT_EXTENDED_MASTER_SECRET, b"")]
    else:
        groups = [GREASE, kex_code] + [g for g in CHROME_GROUPS[1:] if g != kex_code]
        sigalgs = list(CHROME_SIGALGS) + ([o.scheme] if o.scheme not in CHROME_SIGALGS else [])
        compress_algs = [2] + [a for a in compress_algs if a != 2]
        hello = ClientHello(random=os.urandom(32), legacy_session_id=os.urandom(32),
                            cipher_suites=list(CHROME_SUITES), legacy_compression_methods=[0],
                            key_share=[(GREASE, b"\x00")] + shares, psk_key_exchange_modes=[1],
                            signature_algorithms=sigalgs, supported_groups=groups,
                            supported_versions=[GREASE, TLS13, TLS12], server_name=SERVER_NAME,
                            alpn_protocols=["h2", "http/1.1"])
        ech = (b"\x00\x00\x01\x00\x01" + os.urandom(1) + b"\x00\x20" + os.urandom(32)
               + CHROME_ECH_PAYLOAD.to_bytes(2, "big") + os.urandom(CHROME_ECH_PAYLOAD))
        hello.other_extensions = [(GREASE + 0x1010, b""), (EXT_EXTENDED_MASTER_SECRET, b""),
                                  (EXT_RENEGOTIATION_INFO, b"\x00"), (EXT_EC_POINT_FORMATS, b"\x01\x00"),
                                  (EXT_SESSION_TICKET, b""), (EXT_STATUS_REQUEST, b"\x01\x00\x00\x00\x00"),
                                  (EXT_SCT, b""), (EXT_APPLICATION_SETTINGS, b"\x00\x03\x02h2"),
                                  (EXT_ECH, ech), (GREASE + 0x2020, b"\x00")]
    if compress_algs:
        body = b"".join(a.to_bytes(2, "big") for a in compress_algs)
        hello.other_extensions.append((EXT_COMPRESS_CERTIFICATE, bytes([len(body)]) + body))
    if o.psk_identity_len:
        hello.pre_shared_key = OfferedPsks(identities=[(os.urandom(o.psk_identity_len), 0x1234ABCD)],
                                           binders=[os.urandom(HASH_LEN)])
    return _encode(push_client_hello, hello)


def server_hello(kex: str, share: bytes, psk: bool = False) -> bytes:
    hello = ServerHello(random=os.urandom(32), legacy_session_id=os.urandom(32), cipher_suite=AES_256_GCM_SHA384,
                        compression_method=0, key_share=(GROUPS[kex], share), supported_version=TLS13,
                        pre_shared_key=0 if psk else None)
    return _encode(push_server_hello, hello)


def hello_retry_request(kex: str) -> bytes:
    """A ServerHello with the HelloRetryRequest random whose key_share names the group (RFC 8446
    §4.1.4, §4.2.8); OpenSSL sends no cookie."""
    hello = ServerHello(random=HELLO_RETRY_RANDOM, legacy_session_id=os.urandom(32),
                        cipher_suite=AES_256_GCM_SHA384, compression_method=0, supported_version=TLS13)
    hello.other_extensions = [(EXT_KEY_SHARE, GROUPS[kex].to_bytes(2, "big"))]
    return _encode(push_server_hello, hello)


def encrypted_extensions(profile: str) -> bytes:
    """OpenSSL's server sends an empty list, plus the selected ALPN when the client offered it."""
    return _encode(push_encrypted_extensions, EncryptedExtensions(alpn_protocol="h2" if profile == "browser" else None))


def certificate_request(profile: str, scheme: int) -> bytes:
    """OpenSSL's server CertificateRequest: empty context, signature_algorithms (its default list)."""
    sigalgs = list(OPENSSL_TLS13_SIGALGS) + ([scheme] if scheme not in OPENSSL_TLS13_SIGALGS else [])
    return _encode(push_certificate_request, CertificateRequest(request_context=b"", signature_algorithms=sigalgs))


def certificate(certs: tuple[bytes, ...]) -> bytes:
    return _encode(push_certificate, Certificate(request_context=b"", certificates=[(c, b"") for c in certs]))


def compress(data: bytes, algorithm: str) -> bytes:
    if algorithm == "zlib":
        return zlib.compress(data, 9)
    if algorithm == "brotli":
        return brotli.compress(data)
    return zstandard.ZstdCompressor(level=19).compress(data)


def compressed_certificate(certificate_message: bytes, algorithm: str) -> bytes:
    """RFC 8879 CompressedCertificate: the Certificate message body (without its 4-byte handshake
    header, as OpenSSL does) compressed with `algorithm`."""
    body = certificate_message[4:]
    buf = Buffer(capacity=len(body) + 1024)
    buf.push_uint8(COMPRESSED_CERTIFICATE)
    with push_block(buf, 3):
        buf.push_uint16(COMPRESSION_ALGORITHMS[algorithm])
        buf.push_bytes(len(body).to_bytes(3, "big"))
        push_opaque(buf, 3, compress(body, algorithm))
    return buf.data


def certificate_verify(scheme: int, signature: bytes) -> bytes:
    return _encode(push_certificate_verify, CertificateVerify(algorithm=scheme, signature=signature))


def verify_content(transcript: bytes, side: str) -> bytes:
    """The bytes a CertificateVerify signs (RFC 8446 §4.4.3), over a SHA-384 transcript hash."""
    return b" " * 64 + f"TLS 1.3, {side} CertificateVerify".encode() + b"\x00" + hashlib.sha384(transcript).digest()


def finished(transcript: bytes) -> bytes:
    key = os.urandom(HASH_LEN)
    verify = hmac.new(key, hashlib.sha384(transcript).digest(), hashlib.sha384).digest()
    return _encode(push_finished, Finished(verify_data=verify))


OPENSSL_TICKET_NONCE = 8
_SESSION_DER = 130  # OpenSSL 4.0's DER SSL_SESSION for a server-authenticated TLS 1.3 session (fitted)


def openssl_ticket_len(client_leaf_der: int | None = None) -> int:
    """OpenSSL's stateless ticket: key name 16 + IV 16 + AES-256-CBC(session DER) + HMAC-SHA256 32.
    The session carries the client's leaf certificate under mutual TLS. Fitted to the OpenSSL
    bundled with `cryptography` (208 B without a client certificate; exact in the tests)."""
    session = _SESSION_DER + (client_leaf_der + 4 if client_leaf_der else 0)
    return 16 + 16 + 16 * (session // 16 + 1) + 32


OPENSSL_TICKET = openssl_ticket_len()


def new_session_ticket(ticket_len: int = OPENSSL_TICKET) -> bytes:
    nst = NewSessionTicket(ticket_lifetime=7200, ticket_age_add=int.from_bytes(os.urandom(4), "big"),
                           ticket_nonce=os.urandom(OPENSSL_TICKET_NONCE), ticket=os.urandom(ticket_len))
    return _encode(push_new_session_ticket, nst)
