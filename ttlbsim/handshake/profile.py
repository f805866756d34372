"""The handshake profile: what each side of a TLS 1.3 handshake writes to its TCP socket.

This is the contract between the handshake model (genuine encodings) and the simulator: an
ordered tuple of :class:`Flight` s in wire order. The simulator sends flight *i* when its sender
has received every byte of the previous flight from the other side (consecutive flights of the
same sender go back to back), after spending the compute time of the operations in `ops` — except
those the flight places earlier (`read_ops`, `write_ops`): OpenSSL processes each handshake message
as its record arrives and signs between the writes of its flight, so on a slow link that work
overlaps the transfer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Literal

Sender = Literal["client", "server"]


@dataclass(frozen=True)
class Flight:
    """One flight: the bytes one side writes before it must wait for the peer.

    - `bytes`: TLS bytes on the wire (record headers, inner content type and AEAD tags included).
    - `messages`: per-message breakdown, name -> on-wire bytes attributed to it (the record
      overhead is attributed to the message the record carries; "ChangeCipherSpec" is a message
      here). The values sum to `bytes`.
    - `writes`: the socket write() sizes as OpenSSL issues them (its 4096-byte handshake write
      buffer; see linux-tcp-netem.md §10). They sum to `bytes`. With TCP_NODELAY every write's
      tail can become a short segment, so the simulator segments per write.
    - `ops`: the cryptographic operations the sender performs before it can write this flight,
      as "kind:algorithm" strings, e.g. "kem.encaps:X25519MLKEM768", "sign:mldsa44",
      "verify:mldsa44", "kem.decaps:X25519MLKEM768", "kem.keygen:X25519MLKEM768".
    - `phase`: "handshake" for flights up to the client's Finished, "post" for flights after it
      (NewSessionTicket).
    - `read_ops`: ((n, ops), ...) — operations of `ops` the sender performs while it reads the
      peer's preceding flight, as soon as the first `n` bytes of that flight have arrived (n = the
      end of the message they need, in order): OpenSSL's client decapsulates at the end of
      ServerHello, verifies the chain at the end of Certificate and the signature at the end of
      CertificateVerify (`ossl_statem_client_process_message`), each when its record is complete.
    - `write_ops`: ((k, ops), ...) — operations of `ops` performed after `writes[:k]` went to the
      socket and before `writes[k]` (k ≥ 1): the server signs CertificateVerify only after its
      Certificate record was produced, and the part of the flight its 4096-byte write buffer could
      not hold has been written by then (`tls_construct_cert_verify` after
      `tls_construct_server_certificate`; linux-tcp-netem.md §10).
    Operations in neither are performed before the first write, after the whole preceding peer
    flight has arrived (together with the host's per-flight overhead).
    """

    sender: Sender
    bytes: int
    messages: tuple[tuple[str, int], ...]
    writes: tuple[int, ...]
    ops: tuple[str, ...] = ()
    phase: Literal["handshake", "post"] = "handshake"
    read_ops: tuple[tuple[int, tuple[str, ...]], ...] = ()
    write_ops: tuple[tuple[int, tuple[str, ...]], ...] = ()

    @cached_property
    def final_ops(self) -> tuple[str, ...]:
        """The operations of `ops` left for after the whole preceding peer flight (before the
        first write): `ops` minus those `read_ops` and `write_ops` place earlier (worked out once
        per flight)."""
        left = list(self.ops)
        for _, ops in (*self.read_ops, *self.write_ops):
            for op in ops:
                left.remove(op)
        return tuple(left)

    def message_dict(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, n in self.messages:
            out[name] = out.get(name, 0) + n
        return out


@dataclass(frozen=True)
class HandshakeProfile:
    """Every flight of one TLS 1.3 handshake in wire order, plus what the record layer needs.

    `record_overhead` is the per-protected-record overhead in bytes (5-byte header + 1 inner
    content type + AEAD tag: 22 for AES-GCM), `max_fragment` the plaintext limit per record
    (16384, RFC 8446 §5.1); the session uses them to frame application data.
    `params` records the choices the profile was built from (kex, sig, chain, ...), and
    `sizes` notable object sizes (certificate DER lengths, key share, signature).
    `post_ops` are the operations the server performs after it has received the client's last
    handshake flight and before it writes anything else (NewSessionTicket or the response): with
    mutual TLS, verifying the client's chain and CertificateVerify.
    """

    flights: tuple[Flight, ...]
    record_overhead: int = 22
    max_fragment: int = 16384
    params: dict = field(default_factory=dict, compare=False, hash=False)
    sizes: dict = field(default_factory=dict, compare=False, hash=False)
    post_ops: tuple[str, ...] = ()

    @property
    def handshake_flights(self) -> tuple[Flight, ...]:
        return tuple(f for f in self.flights if f.phase == "handshake")

    @property
    def all_ops(self) -> tuple[str, ...]:
        """Every distinct cryptographic operation of the handshake (flights and post_ops), sorted."""
        return tuple(sorted({op for f in self.flights for op in f.ops} | set(self.post_ops)))

    def bytes_sent(self, sender: Sender) -> int:
        return sum(f.bytes for f in self.flights if f.sender == sender)

    def to_dict(self) -> dict:
        return {
            "params": dict(self.params),
            "record_overhead": self.record_overhead,
            "max_fragment": self.max_fragment,
            "flights": [
                {
                    "sender": f.sender,
                    "bytes": f.bytes,
                    "phase": f.phase,
                    "messages": f.message_dict(),
                    "message_list": [list(m) for m in f.messages],
                    "writes": list(f.writes),
                    "ops": list(f.ops),
                    "read_ops": [[n, list(ops)] for n, ops in f.read_ops],
                    "write_ops": [[k, list(ops)] for k, ops in f.write_ops],
                }
                for f in self.flights
            ],
            "sizes": dict(self.sizes),
            "post_ops": list(self.post_ops),
        }

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, d: dict) -> "HandshakeProfile":
        flights = tuple(
            Flight(
                sender=f["sender"],
                bytes=int(f["bytes"]),
                messages=tuple((str(n), int(b)) for n, b in f.get("message_list", f["messages"].items())),
                writes=tuple(int(w) for w in f["writes"]),
                ops=tuple(f.get("ops", ())),
                phase=f.get("phase", "handshake"),
                read_ops=tuple((int(n), tuple(ops)) for n, ops in f.get("read_ops", ())),
                write_ops=tuple((int(k), tuple(ops)) for k, ops in f.get("write_ops", ())),
            )
            for f in d["flights"]
        )
        return cls(flights=flights, record_overhead=int(d.get("record_overhead", 22)),
                   max_fragment=int(d.get("max_fragment", 16384)),
                   params=dict(d.get("params", {})), sizes=dict(d.get("sizes", {})),
                   post_ops=tuple(d.get("post_ops", ())))


__all__ = ["Flight", "HandshakeProfile", "Sender"]
