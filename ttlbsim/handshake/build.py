"""`build_profile(tls)`: the flights of one TLS 1.3 handshake from genuine keys, certificates and
encodings, framed as OpenSSL frames them.

Flights in wire order:

1. client: ClientHello                          ops: kem.keygen per key share
   (--hrr: ClientHello1 without a share for `kex` -> server: HelloRetryRequest + CCS ->
   client: CCS + ClientHello2 with one `kex` share)
2. server: ServerHello, CCS, EncryptedExtensions, [CertificateRequest], Certificate (or
   CompressedCertificate), CertificateVerify, Finished     ops: kem.encaps, sign (no sign on --resume)
3. client: CCS, [Certificate, CertificateVerify,] Finished
                                      ops: kem.decaps, verify per chain signature + CertificateVerify, [sign]
4. server (phase "post", only with tickets > 0): NewSessionTicket x tickets

Profiles are cached in-process and, for common choices, on disk as JSON under
``models/handshakes/`` (:func:`load_cached` prefers a file whose params match exactly;
:func:`write_cache` regenerates them; tests fail when a regenerated profile drifts).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

from ..errors import InvalidValue
from ..paths import models_dir
from ..scenario import TLSConfig
from . import messages as m
from .algorithms import GROUPS, get_sig
from .certificates import Chain, build_chain, resize
from .profile import Flight, HandshakeProfile
from .records import CCS_RECORD, MAX_FRAGMENT, PROTECTED_OVERHEAD, record_sizes, socket_writes, writes_issued

#: bump when the model changes sizes on purpose (cached JSON with another version is regenerated)
MODEL_VERSION = 2  # 2: read_ops / write_ops (when each side's crypto happens)


class _FlightBuilder:
    """Collects the records of one flight and turns them into a :class:`Flight`."""

    def __init__(self, sender: str, ops: list[str], phase: str = "handshake") -> None:
        self.sender, self.ops, self.phase = sender, ops, phase
        self.items: list[tuple[str, list[int]]] = []
        self.read_ops: list[tuple[int, tuple[str, ...]]] = []
        self.write_ops: list[tuple[int, tuple[str, ...]]] = []

    def read_after(self, peer: Flight, message: str, ops: list[str]) -> None:
        """Perform `ops` (already in this flight's ops) once the peer's flight has arrived up to
        the end of its `message` (its first message of that name)."""
        end = 0
        for name, n in peer.messages:
            end += n
            if name == message:
                if ops:
                    self.read_ops.append((end, tuple(ops)))
                return
        raise ValueError(f"no {message} in the peer's flight")

    def sign_before_next(self, op: str) -> None:
        """The record added next needs `op` (a signature): with OpenSSL's buffered writes, what
        could not stay in the buffer has been written before the signing starts."""
        k = writes_issued([r for _, rs in self.items for r in rs])
        if k:
            self.write_ops.append((k, (op,)))

    def plain(self, name: str, message: bytes) -> None:
        self.items.append((name, record_sizes(len(message), protected=False)))

    def protected(self, name: str, message: bytes) -> None:
        self.items.append((name, record_sizes(len(message), protected=True)))

    def ccs(self) -> None:
        self.items.append(("ChangeCipherSpec", [CCS_RECORD]))

    def flight(self, flush_each: bool = False) -> Flight:
        records = [r for _, rs in self.items for r in rs]
        if flush_each:
            writes = tuple(w for _, rs in self.items for w in socket_writes(rs))
        else:
            writes = socket_writes(records)
        return Flight(sender=self.sender, bytes=sum(records), messages=tuple((n, sum(rs)) for n, rs in self.items),
                      writes=writes, ops=tuple(self.ops), phase=self.phase,
                      read_ops=tuple(self.read_ops), write_ops=() if flush_each else tuple(self.write_ops))


def _sign_verify(chain: Chain, transcript: bytes, side: str) -> bytes:
    """A genuine CertificateVerify by the chain's leaf key over `transcript`."""
    sig = get_sig(chain.leaf_sig)
    content = m.verify_content(transcript, side)
    signature = sig.sign(chain.leaf_key, content)
    sig.verify(chain.leaf_key, content, signature)
    return m.certificate_verify(sig.scheme, signature)


def _certificate_message(certs: tuple[bytes, ...], compress: str | None) -> tuple[str, bytes]:
    msg = m.certificate(certs)
    if compress:
        return "CompressedCertificate", m.compressed_certificate(msg, compress)
    return "Certificate", msg


def generate_profile(tls: TLSConfig) -> HandshakeProfile:
    """Build the profile from scratch (no caches apart from per-process keys and chains)."""
    kex_name = tls.kex
    kem = GROUPS[kex_name]
    sig = get_sig(tls.sig)
    n_shares = tls.key_shares or m.DEFAULT_KEY_SHARES[tls.client_profile]
    resume = tls.resume
    mtls = tls.mtls and not resume  # RFC 8446 §4.3.2: no CertificateRequest with PSK authentication
    psk_len = m.OPENSSL_TICKET if resume else 0
    transcript = bytearray()
    flights: list[Flight] = []
    sizes: dict = {}

    def hello(groups: list[str], ops: list[str]) -> tuple[bytes, tuple | None]:
        """A ClientHello with real key shares for `groups`; also (share, secret state) for `kex`."""
        shares, mine = [], None
        for g in groups:
            share, state = GROUPS[g].keygen()
            shares.append((g, share))
            ops.append(f"kem.keygen:{g}")
            if g == kex_name:
                mine = (share, state)
        msg = m.client_hello(m.HelloOptions(profile=tls.client_profile, kex=kex_name, shares=tuple(shares),
                                            scheme=sig.scheme, psk_identity_len=psk_len, compress=tls.compress))
        sizes.setdefault("client_shares", []).append([len(s) for _, s in shares])
        return msg, mine

    # --- client flight 1 (and the HelloRetryRequest round trip)
    ops: list[str] = []
    first_groups = m.share_groups(kex_name, n_shares, exclude=kex_name if tls.hrr else None)
    ch, mine = hello(first_groups, ops)
    fb = _FlightBuilder("client", ops)
    fb.plain("ClientHello", ch)
    flights.append(fb.flight())
    transcript += ch
    client_ccs_sent = server_ccs_sent = False
    if tls.hrr:
        fb = _FlightBuilder("server", [])
        hrr = m.hello_retry_request(kex_name)
        fb.plain("HelloRetryRequest", hrr)
        fb.ccs()
        server_ccs_sent = True
        flights.append(fb.flight())
        ops = []
        ch2, mine = hello([kex_name], ops)
        fb = _FlightBuilder("client", ops)
        fb.ccs()
        client_ccs_sent = True
        fb.plain("ClientHello", ch2)
        flights.append(fb.flight())
        transcript += hrr + ch2

    # --- server flight
    assert mine is not None
    server_share, secret = kem.encaps(mine[0])
    assert kem.decaps(mine[1], server_share) == secret
    chain = build_chain(sig.name, tls.chain, tls.intermediate_sig, tls.cert_profile, "server")
    certs = chain.certs if tls.chain_bytes is None else resize(chain.certs, tls.chain_bytes)
    sizes.update(server_share=len(server_share), certificates=[len(c) for c in certs],
                 chain_der=sum(len(c) for c in certs), genuine_certificates=[len(c) for c in chain.certs])
    server_ops = [f"kem.encaps:{kex_name}"] + ([] if resume else [f"sign:{sig.name}"])
    fb = _FlightBuilder("server", server_ops)
    sh = m.server_hello(kex_name, server_share, psk=resume)
    fb.plain("ServerHello", sh)
    if not server_ccs_sent:
        fb.ccs()
    ee = m.encrypted_extensions(tls.client_profile)
    fb.protected("EncryptedExtensions", ee)
    transcript += sh + ee
    client_chain = None
    if mtls:
        client_chain = build_chain(sig.name, tls.chain, tls.intermediate_sig, tls.cert_profile, "client")
        cr = m.certificate_request(tls.client_profile, sig.scheme)
        fb.protected("CertificateRequest", cr)
        transcript += cr
    if not resume:
        name, cert_msg = _certificate_message(certs, tls.compress)
        fb.protected(name, cert_msg)
        cv = _sign_verify(chain, bytes(transcript + cert_msg), "server")
        fb.sign_before_next(f"sign:{sig.name}")
        fb.protected("CertificateVerify", cv)
        transcript += cert_msg + cv
        sizes.update(certificate_message=len(cert_msg), certificate_verify=len(cv))
    fin = m.finished(bytes(transcript))
    fb.protected("Finished", fin)
    transcript += fin
    server_flight = fb.flight()
    flights.append(server_flight)

    # --- client Finished flight: its crypto is done while the server's flight is read, each
    # operation at the end of the message it needs
    client_ops = [f"kem.decaps:{kex_name}"]
    fb = _FlightBuilder("client", client_ops)
    fb.read_after(server_flight, "ServerHello", [f"kem.decaps:{kex_name}"])
    if not resume:
        chain_ops = [f"verify:{s}" for s in chain.signatures]
        client_ops += chain_ops + [f"verify:{sig.name}"]
        fb.read_after(server_flight, name, chain_ops)
        fb.read_after(server_flight, "CertificateVerify", [f"verify:{sig.name}"])
    if not client_ccs_sent:
        fb.ccs()
    post_ops: list[str] = []
    if client_chain is not None:
        name, cert_msg = _certificate_message(client_chain.certs, tls.compress)
        fb.protected(name, cert_msg)
        cv = _sign_verify(client_chain, bytes(transcript + cert_msg), "client")
        fb.sign_before_next(f"sign:{sig.name}")
        fb.protected("CertificateVerify", cv)
        transcript += cert_msg + cv
        client_ops.append(f"sign:{sig.name}")
        post_ops = [f"verify:{s}" for s in client_chain.signatures] + [f"verify:{sig.name}"]
        sizes.update(client_certificates=[len(c) for c in client_chain.certs])
    fb.protected("Finished", m.finished(bytes(transcript)))
    flights.append(fb.flight())

    # --- post-handshake: NewSessionTicket x tickets, each flushed on its own
    if tls.tickets:
        fb = _FlightBuilder("server", post_ops, phase="post")
        ticket = m.openssl_ticket_len(len(client_chain.certs[0]) if client_chain else None)
        for _ in range(tls.tickets):
            fb.protected("NewSessionTicket", m.new_session_ticket(ticket))
        flights.append(fb.flight(flush_each=True))

    return HandshakeProfile(flights=tuple(flights), record_overhead=PROTECTED_OVERHEAD, max_fragment=MAX_FRAGMENT,
                            params=profile_params(tls), sizes=sizes, post_ops=tuple(post_ops))


# --------------------------------------------------------------------------- caching

def profile_params(tls: TLSConfig) -> dict:
    return {**dataclasses.asdict(tls), "model_version": MODEL_VERSION}


def cache_dir() -> Path:
    return models_dir() / "handshakes"


def cache_name(tls: TLSConfig) -> str:
    """File name of a cached profile: the main choices, then every non-default variant."""
    parts = [tls.kex, tls.sig, f"chain{tls.chain}", tls.cert_profile, tls.client_profile]
    default = TLSConfig()
    for f in ("intermediate_sig", "mtls", "hrr", "resume", "compress", "tickets", "key_shares", "chain_bytes"):
        v = getattr(tls, f)
        if v != getattr(default, f):
            parts.append(f if v is True else f"{f}-{v}")
    return "_".join(str(p) for p in parts) + ".json"


def load_cached(tls: TLSConfig) -> HandshakeProfile | None:
    """The cached profile for `tls` if models/handshakes/ has one built from exactly these params."""
    path = cache_dir() / cache_name(tls)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("params") != profile_params(tls):
        return None
    return HandshakeProfile.from_dict(data)


@functools.lru_cache(maxsize=512)
def _build_cached(tls: TLSConfig) -> HandshakeProfile:
    return load_cached(tls) or generate_profile(tls)


def build_profile(tls: TLSConfig | None = None, **options) -> HandshakeProfile:
    """The handshake profile for `tls` (or TLSConfig(**options)): the cached JSON when one matches,
    otherwise generated from genuine encodings; memoised per process."""
    if tls is None:
        tls = TLSConfig(**options)
    elif options:
        tls = dataclasses.replace(tls, **options)
    if not isinstance(tls, TLSConfig):
        raise InvalidValue("tls", tls, "a ttlbsim.scenario.TLSConfig")
    return _build_cached(tls)


#: the study's pairs and the common ones, cached on disk (both certificate and client profiles)
CACHED_KEX = ("x25519", "secp256r1", "X25519MLKEM768", "SecP256r1MLKEM768", "MLKEM1024")
CACHED_SIG = ("rsa2048", "ecdsa-p256", "ed25519", "mldsa44", "mldsa65", "mldsa87")


def cached_configs() -> list[TLSConfig]:
    return [TLSConfig(kex=k, sig=s, cert_profile=cp, client_profile=clp)
            for k in CACHED_KEX for s in CACHED_SIG for cp in ("minimal", "webpki") for clp in ("openssl", "browser")]


def write_cache(configs: list[TLSConfig] | None = None) -> list[Path]:
    """(Re)generate the cached profiles; returns the files written."""
    out = []
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    for tls in configs or cached_configs():
        path = d / cache_name(tls)
        path.write_text(json.dumps(generate_profile(tls).to_dict(), indent=1, sort_keys=True) + "\n")
        out.append(path)
    return out


__all__ = ["build_profile", "generate_profile", "load_cached", "write_cache", "cached_configs", "cache_name",
           "MODEL_VERSION"]
