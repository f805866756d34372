"""Real TLS 1.3 endpoints for the emulator: pyOpenSSL over the OpenSSL that `cryptography` bundles.

Run inside a network namespace by the harness::

    python -m ttlbsim.emulate.endpoints server SPEC.json   # prints READY, then one JSON row per connection
    python -m ttlbsim.emulate.endpoints client SPEC.json   # prints one JSON row per connection

Configured like the scenario: one key-exchange group on the server (the client offers OpenSSL's
default group list with the scenario's group first and `key_shares` key shares), the scenario's
chain (`build_chain` for sig / intermediate_sig / chain / cert_profile), mutual TLS when asked,
TCP_NODELAY on both sockets, no session tickets.

Tickets: pyOpenSSL has no `SSL_CTX_set_num_tickets`, and `SSL_OP_NO_TICKET` only turns OpenSSL's
two stateless tickets into two stateful ones (79 B records each). :func:`disable_tickets` finds
the `num_tickets` field of the SSL_CTX at run time (a size_t equal to 2 in two fresh contexts,
then *verified* by an in-memory handshake: 0 sends no ticket and 1 sends exactly one) and sets it.
If no offset verifies, the server sends the two stateful tickets and says so
(`tickets_sent` in every row), so a comparison can set the simulator's `tickets` to match.

Client timing is the study's: t0 just before ``connect()``, TTFB when ``do_handshake()``
returns (the client has verified the server's Finished and written its own), TTLB when the last
response byte has been read. Retransmissions and segment counts come from ``TCP_INFO``.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

from OpenSSL import SSL
from OpenSSL._util import ffi, lib

from ..handshake import messages
from ..handshake.certificates import build_chain

PORT = 4433
#: ttlbsim group name -> OpenSSL group name
OPENSSL_GROUP = {"x25519": "X25519", "secp256r1": "P-256", "secp384r1": "P-384", "X25519MLKEM768": "X25519MLKEM768",
                 "SecP256r1MLKEM768": "SecP256r1MLKEM768", "SecP384r1MLKEM1024": "SecP384r1MLKEM1024",
                 "MLKEM512": "MLKEM512", "MLKEM768": "MLKEM768", "MLKEM1024": "MLKEM1024"}
#: OpenSSL 4.0's default supported_groups, in order (the openssl client profile's list)
_DEFAULT_ORDER = ["X25519MLKEM768", "SecP256r1MLKEM768", "curveSM2MLKEM768", "X25519", "P-256", "X448", "P-384",
                  "P-521", "curveSM2", "ffdhe2048", "ffdhe3072"]
MAX_FRAGMENT = 16384
#: X509_V_FLAG_NO_CHECK_TIME: the generated chains have fixed validity dates (2025), so the
#: signatures and the chain are verified, the dates are not
_NO_CHECK_TIME = 0x200000

# --------------------------------------------------------------------------- tickets

_TICKET_OFFSET: int | None | bool = False  # False: not probed yet; None: probe failed


def _ctx_words(ctx: SSL.Context, n: int = 4096) -> list[int]:
    raw = bytes(ffi.buffer(ffi.cast("char *", ctx._context), n))
    return [struct.unpack_from("<Q", raw, i)[0] for i in range(0, n, 8)]


def pump_in_memory(client: "SSL.Connection", server: "SSL.Connection", rounds: int = 4) -> list[tuple[str, bytes]]:
    """Run a TLS handshake between two memory-BIO connections: each round lets the client, then
    the server, advance and hands what it wrote to the other. Returns (who, bytes) per write
    burst, who = "client" | "server", in wire order."""
    out: list[tuple[str, bytes]] = []
    for _ in range(rounds):
        for conn, peer, who in ((client, server, "client"), (server, client, "server")):
            try:
                conn.do_handshake()
            except SSL.WantReadError:
                pass
            try:
                data = conn.bio_read(1 << 20)
            except SSL.WantReadError:
                data = b""
            if data:
                out.append((who, data))
                peer.bio_write(data)
    return out


def tickets_sent(server_ctx: "SSL.Context") -> int:
    """NewSessionTicket records a server context sends in a fresh in-memory handshake."""
    s = SSL.Connection(server_ctx, None)
    s.set_accept_state()
    c = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)
    c.set_connect_state()
    server_out = [data for who, data in pump_in_memory(c, s) if who == "server"]
    # the first server output is its handshake flight; anything after it is tickets
    return sum(_count_records(x) for x in server_out[1:])


def _tickets_in_handshake(offset: int, value: int, chain_dir: Path) -> int:
    """Tickets a fresh server context sends with `value` written at `offset` (in-memory handshake)."""
    server = SSL.Context(SSL.TLS_METHOD)
    server.use_certificate_chain_file(str(chain_dir / "chain.pem"))
    server.use_privatekey_file(str(chain_dir / "key.pem"))
    ffi.cast("uint64_t *", ffi.cast("char *", server._context) + offset)[0] = value
    return tickets_sent(server)


def _count_records(data: bytes) -> int:
    n, i = 0, 0
    while i + 5 <= len(data):
        i += 5 + struct.unpack("!H", data[i + 3:i + 5])[0]
        n += 1
    return n


def ticket_offset() -> int | None:
    """Offset of `num_tickets` in this OpenSSL's SSL_CTX, verified; None if it cannot be found."""
    global _TICKET_OFFSET
    if _TICKET_OFFSET is not False:
        return _TICKET_OFFSET  # type: ignore[return-value]
    _TICKET_OFFSET = None
    a, b = SSL.Context(SSL.TLS_METHOD), SSL.Context(SSL.TLS_METHOD)
    candidates = [i * 8 for i, (x, y) in enumerate(zip(_ctx_words(a), _ctx_words(b))) if x == 2 and y == 2]
    chain = build_chain("ecdsa-p256", 1, profile="minimal")
    with tempfile.TemporaryDirectory(prefix="ttlbsim-tix-") as d:
        p = Path(d)
        (p / "chain.pem").write_bytes(chain.chain_pem())
        (p / "key.pem").write_bytes(chain.key_pem())
        base = _tickets_in_handshake(candidates[0], 2, p) if candidates else 0
        for off in candidates:
            try:
                if (_tickets_in_handshake(off, 0, p) == base - 2 and _tickets_in_handshake(off, 1, p) == base - 1
                        and _tickets_in_handshake(off, 3, p) == base + 1):
                    _TICKET_OFFSET = off
                    break
            except SSL.Error:
                continue
    return _TICKET_OFFSET  # type: ignore[return-value]


def set_num_tickets(ctx: SSL.Context, n: int) -> int:
    """Make the server send `n` NewSessionTickets; returns the number it will actually send."""
    off = ticket_offset()
    if off is None:
        ctx.set_options(SSL.OP_NO_TICKET)  # at least keep them small (stateful, 79 B records)
        return 2
    ffi.cast("uint64_t *", ffi.cast("char *", ctx._context) + off)[0] = n
    return n


# --------------------------------------------------------------------------- contexts

def client_groups(kex: str, shares: int, first_share: str | None = None) -> bytes:
    """OpenSSL's default group list with `kex` first; '*' marks the groups that get a key share
    (the first `shares` of the share order, or `first_share` alone for a HelloRetryRequest)."""
    name = OPENSSL_GROUP[kex]
    order = [name] + [g for g in _DEFAULT_ORDER if g != name]
    if first_share:
        share = OPENSSL_GROUP[first_share]
        order = [share, name] + [g for g in order if g not in (share, name)]
        return ("*" + ":".join(order)).encode()
    share_names = [OPENSSL_GROUP[g] for g in messages.share_groups(kex, shares)]
    order = share_names + [g for g in order if g not in share_names]
    return ":".join(("*" + g) if g in share_names else g for g in order).encode()


def hrr_first_share(kex: str) -> str:
    return "x25519" if kex != "x25519" else "secp256r1"


def write_credentials(tls: dict, d: Path) -> dict:
    """Write the scenario's chain(s) as PEM files into `d` and return their paths.

    Done once, in the process that starts the emulation: the keys are generated per process, so
    server and client must read the same files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    files = {}
    roles = ("server", "client") if tls.get("mtls") else ("server",)
    for role in roles:
        chain = build_chain(tls["sig"], tls["chain"], tls.get("intermediate_sig"), tls["cert_profile"], role=role)
        for kind, data in (("chain", chain.chain_pem()), ("key", chain.key_pem()),
                           ("root", x509.load_der_x509_certificate(chain.root).public_bytes(serialization.Encoding.PEM))):
            path = d / f"{role}-{kind}.pem"
            path.write_bytes(data)
            files[f"{role}_{kind}"] = str(path)
        files[f"{role}_chain_der_bytes"] = chain.der_bytes
    return files


def server_context(tls: dict, files: dict) -> tuple[SSL.Context, int]:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.use_certificate_chain_file(files["server_chain"])
    ctx.use_privatekey_file(files["server_key"])
    if lib.SSL_CTX_set1_curves_list(ctx._context, OPENSSL_GROUP[tls["kex"]].encode()) != 1:
        raise RuntimeError(f"OpenSSL does not know group {tls['kex']}")
    if tls.get("mtls"):
        ctx.load_verify_locations(files["client_root"])
        ctx.get_cert_store().set_flags(_NO_CHECK_TIME)
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, None)
    sent = set_num_tickets(ctx, int(tls.get("tickets") or 0))
    return ctx, sent


def client_context(tls: dict, files: dict) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)  # TLS 1.2 still offered: OpenSSL's default ClientHello (1.3 is negotiated)
    ctx.load_verify_locations(files["server_root"])
    ctx.get_cert_store().set_flags(_NO_CHECK_TIME)
    ctx.set_verify(SSL.VERIFY_PEER, None)
    shares = tls.get("key_shares") or 1
    first = hrr_first_share(tls["kex"]) if tls.get("hrr") else None
    if lib.SSL_CTX_set1_curves_list(ctx._context, client_groups(tls["kex"], shares, first)) != 1:
        raise RuntimeError(f"OpenSSL rejected the client group list for {tls['kex']}")
    if tls.get("mtls"):
        ctx.use_certificate_chain_file(files["client_chain"])
        ctx.use_privatekey_file(files["client_key"])
    return ctx


# --------------------------------------------------------------------------- TCP_INFO

def tcp_info(sock: socket.socket) -> dict:
    """The fields of Linux's struct tcp_info the emulator records."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    raw = raw + bytes(232 - len(raw))
    u32 = lambda off: struct.unpack_from("<I", raw, off)[0]  # noqa: E731
    u64 = lambda off: struct.unpack_from("<Q", raw, off)[0]  # noqa: E731
    # (offsets of linux-6.1 include/uapi/linux/tcp.h; reordering: the dupthresh in segments,
    # reord_seen: reordering events counted (tcp_check_sack_reordering and friends), dsack_dups:
    # duplicate segments reported by DSACK, rcv_ooopack: out-of-order packets received)
    return {"total_retrans": u32(100), "segs_out": u32(136), "segs_in": u32(140), "bytes_sent": u64(200),
            "bytes_retrans": u64(208), "snd_cwnd": u32(80), "rtt_us": u32(68), "min_rtt_us": u32(148),
            "reordering": u32(88), "dsack_dups": u32(216), "reord_seen": u32(220), "rcv_ooopack": u32(224),
            "options": raw[5]}


def _receiver_state(sock: socket.socket, t_ms: float, got: int) -> list:
    """The receiver's autotuning state after one SSL_read (a diagnostic trace): time since
    connect() (ms), plaintext bytes read so far, tcpi_rcv_ssthresh, tcpi_rcv_rtt (µs, the
    rcv_rtt_est that paces autotuning), tcpi_rcv_space (rcvq_space.space, B) and SO_RCVBUF
    (sk_rcvbuf, which `tcp_rcv_space_adjust` grows)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    ssthresh, rtt, space = struct.unpack_from("<I", raw, 64)[0], *struct.unpack_from("<II", raw, 92)
    return [round(t_ms, 3), got, ssthresh, rtt, space, sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)]


def _timeouts(sock: socket.socket, seconds: float) -> None:
    tv = struct.pack("ll", int(seconds), int((seconds % 1) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)


def _emit(row: dict) -> None:
    sys.stdout.write(json.dumps(row) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- server and client

def serve(spec: dict) -> int:
    tls, total = spec["tls"], spec["warmup"] + spec["runs"]
    data, request = spec["data_bytes"], spec["request_bytes"]
    if True:
        ctx, sent = server_context(tls, spec["files"])
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((spec["server_addr"], PORT))
        ls.listen(16)
        _emit({"ready": True, "tickets_sent": sent})
        payload = b"\x00" * MAX_FRAGMENT
        for i in range(total):
            conn, _ = ls.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _timeouts(conn, spec["timeout_s"])
            row = {"i": i, "ok": False}
            try:
                s = SSL.Connection(ctx, conn)
                s.set_accept_state()
                s.do_handshake()
                got = 0
                while got < request:
                    got += len(s.recv(65536))
                left = data
                while left > 0:  # one write (one record) per 16 KiB, as the simulator's server
                    n = min(left, MAX_FRAGMENT)
                    s.sendall(payload[:n])
                    left -= n
                try:  # wait for the client to close: every byte is acknowledged by then
                    while s.recv(65536):
                        pass
                except (SSL.ZeroReturnError, SSL.SysCallError):
                    pass
                row.update(ok=True, group=s.get_group_name() if hasattr(s, "get_group_name") else None,
                           cipher=s.get_cipher_name())
            except (SSL.Error, OSError) as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"
            row["tcp"] = tcp_info(conn)
            conn.close()
            _emit(row)
    return 0


def client(spec: dict) -> int:
    tls, total = spec["tls"], spec["warmup"] + spec["runs"]
    data, request = spec["data_bytes"], spec["request_bytes"]
    addr = (spec["server_addr"], PORT)
    if os.environ.get("TTLBSIM_EMULATE_FAULT") == "client":
        raise SystemExit("injected client fault (TTLBSIM_EMULATE_FAULT=client)")
    if True:
        ctx = client_context(tls, spec["files"])
        req = b"G" * request
        for i in range(total):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _timeouts(sock, spec["timeout_s"])
            row = {"i": i, "warmup": i < spec["warmup"], "ok": False}
            try:
                t0 = time.perf_counter()
                sock.connect(addr)
                c = SSL.Connection(ctx, sock)
                c.set_connect_state()
                c.do_handshake()
                t1 = time.perf_counter()
                c.sendall(req)
                got = 0
                trace = [] if spec.get("trace_receiver") else None
                while got < data:
                    got += len(c.recv(65536))
                    if trace is not None:
                        trace.append(_receiver_state(sock, (time.perf_counter() - t0) * 1e3, got))
                t2 = time.perf_counter() if data else t1
                if trace is not None:
                    row["receiver"] = trace
                row.update(ok=True, ttfb_ms=(t1 - t0) * 1e3, ttlb_ms=(t2 - t0) * 1e3, bytes=got)
            except (SSL.Error, OSError) as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"
            row["tcp"] = tcp_info(sock)
            sock.close()
            _emit(row)
            if spec.get("gap_s"):
                time.sleep(spec["gap_s"])
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    role, spec_path = argv
    spec = json.loads(Path(spec_path).read_text())
    return serve(spec) if role == "server" else client(spec)


if __name__ == "__main__":
    raise SystemExit(main())
