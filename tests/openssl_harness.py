"""Drive a real OpenSSL TLS 1.3 handshake in memory (pyOpenSSL over the OpenSSL bundled with
`cryptography`) and report the bytes each flight puts on the wire, record by record."""

from __future__ import annotations

import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from OpenSSL import SSL
from OpenSSL._util import lib

from ttlbsim.handshake import messages

#: OpenSSL's name for each group ttlbsim's tests compare
OPENSSL_GROUP_NAMES = {"x25519": "X25519", "secp256r1": "P-256", "X25519MLKEM768": "X25519MLKEM768",
                       "SecP256r1MLKEM768": "SecP256r1MLKEM768", "MLKEM1024": "MLKEM1024",
                       "SecP384r1MLKEM1024": "SecP384r1MLKEM1024", "MLKEM768": "MLKEM768", "MLKEM512": "MLKEM512",
                       "secp384r1": "P-384"}
#: OpenSSL 4.0's default supported_groups in order (messages.OPENSSL_GROUPS)
_DEFAULT_ORDER = ["X25519MLKEM768", "SecP256r1MLKEM768", "curveSM2MLKEM768", "X25519", "P-256", "X448", "P-384",
                  "P-521", "curveSM2", "ffdhe2048", "ffdhe3072"]


@dataclass
class Flight:
    sender: str
    records: list[tuple[int, int]]  # (content type, on-wire bytes)

    @property
    def bytes(self) -> int:
        return sum(n for _, n in self.records)


def client_groups(kex: str, first_share: str | None = None) -> bytes:
    """OpenSSL's default group list with `kex` first; without '*' marks OpenSSL sends one key share,
    for the first group (or `first_share`, for a HelloRetryRequest)."""
    name = OPENSSL_GROUP_NAMES[kex]
    rest = [g for g in _DEFAULT_ORDER if g != name]
    if first_share:
        share = OPENSSL_GROUP_NAMES[first_share]
        order = [share, name] + [g for g in rest if g != share]
    else:
        order = [name] + rest
    return ":".join(order).encode()


def _records(data: bytes) -> list[tuple[int, int]]:
    out, i = [], 0
    while i < len(data):
        t, _v, n = struct.unpack("!BHH", data[i:i + 5])
        out.append((t, n + 5))
        i += 5 + n
    return out


def handshake(kex: str, chain_pem: bytes, key_pem: bytes, *, client_chain: tuple[bytes, bytes] | None = None,
              first_share: str | None = None, rounds: int = 8) -> list[Flight]:
    """Run a full handshake (plus the server's post-handshake tickets) and return every flight."""
    d = Path(tempfile.mkdtemp(prefix="ttlbsim-ossl-"))
    (d / "chain.pem").write_bytes(chain_pem)
    (d / "key.pem").write_bytes(key_pem)
    server_ctx = SSL.Context(SSL.TLS_METHOD)
    server_ctx.use_certificate_chain_file(str(d / "chain.pem"))
    server_ctx.use_privatekey_file(str(d / "key.pem"))
    assert lib.SSL_CTX_set1_curves_list(server_ctx._context, OPENSSL_GROUP_NAMES[kex].encode()) == 1
    client_ctx = SSL.Context(SSL.TLS_METHOD)
    assert lib.SSL_CTX_set1_curves_list(client_ctx._context, client_groups(kex, first_share)) == 1
    if client_chain is not None:
        (d / "cchain.pem").write_bytes(client_chain[0])
        (d / "ckey.pem").write_bytes(client_chain[1])
        client_ctx.use_certificate_chain_file(str(d / "cchain.pem"))
        client_ctx.use_privatekey_file(str(d / "ckey.pem"))
        server_ctx.set_verify(SSL.VERIFY_PEER, lambda *a: True)
    shutil.rmtree(d, ignore_errors=True)  # OpenSSL has read the files into the contexts
    server = SSL.Connection(server_ctx, None)
    server.set_accept_state()
    client = SSL.Connection(client_ctx, None)
    client.set_connect_state()
    from ttlbsim.emulate.endpoints import pump_in_memory

    return [Flight(who, _records(data)) for who, data in pump_in_memory(client, server, rounds)]


assert len(_DEFAULT_ORDER) == len(messages.OPENSSL_GROUPS)
