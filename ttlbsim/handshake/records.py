"""The TLS record layer as OpenSSL frames a handshake by default, and the socket writes it makes.

Checked against OpenSSL 4.0 (the one bundled with `cryptography`, driven through pyOpenSSL, see
tests/test_handshake_openssl.py): every handshake message goes into its own record(s) — OpenSSL
does not pack several handshake messages into one record; ClientHello, ServerHello and
HelloRetryRequest are plaintext records (5-byte header); everything after ServerHello is protected:
5-byte header + content + 1 byte inner content type + 16-byte AEAD tag = 22 bytes of overhead
(RFC 8446 §5.2; no padding by default); a message longer than 16384 bytes is split over several
records (§5.1). Middlebox compatibility mode (on by default, RFC 8446 Appendix D.4) adds a 6-byte
ChangeCipherSpec record: the server's right after its first ServerHello/HelloRetryRequest, the
client's right before its second flight (before the second ClientHello after an HRR, otherwise
before its Finished flight).

Socket writes: during the handshake OpenSSL writes records through a 4096-byte buffering BIO
(crypto/bio/bf_buff.c) and flushes it when the flight is complete. A record that fits is copied
into the buffer; one that does not fill the buffer up, the full buffer is written, and whatever of
the record is still >= 4096 bytes is written directly in one call; the remainder is buffered. This
is an approximation of the OpenSSL 3.x/4.0 write path (linux-tcp-netem.md §10); it gets the number
and size of writes right to within a write for typical flights. NewSessionTicket messages are
flushed one by one (one write each).
"""

from __future__ import annotations

HEADER = 5
TAG = 16
INNER_TYPE = 1
PROTECTED_OVERHEAD = HEADER + INNER_TYPE + TAG  # 22 with AES-GCM / ChaCha20-Poly1305
MAX_FRAGMENT = 16384  # 2**14, RFC 8446 §5.1
CCS_RECORD = HEADER + 1  # change_cipher_spec record: 6 bytes
WRITE_BUFFER = 4096  # OpenSSL's handshake buffering BIO (DEFAULT_BUFFER_SIZE)


def record_sizes(message_len: int, protected: bool) -> list[int]:
    """On-wire sizes of the records carrying one handshake message of `message_len` bytes."""
    overhead = PROTECTED_OVERHEAD if protected else HEADER
    sizes = []
    remaining = message_len
    while remaining > 0:
        n = min(MAX_FRAGMENT, remaining)
        sizes.append(n + overhead)
        remaining -= n
    return sizes or [overhead]


def socket_writes(records: list[int], buffer: int = WRITE_BUFFER) -> tuple[int, ...]:
    """The write() sizes OpenSSL's buffering BIO makes for one flight of records (flushed at the end)."""
    writes = _buffered_writes(records, buffer)
    return writes[0] + ((writes[1],) if writes[1] else ())


def writes_issued(records: list[int], buffer: int = WRITE_BUFFER) -> int:
    """How many write() calls the buffering BIO has made once `records` (the first records of a
    flight) are produced, before the flight's final flush: the bytes still buffered are not
    written yet. A record produced later (e.g. CertificateVerify, after signing) can only be in
    the writes from this index on."""
    return len(_buffered_writes(records, buffer)[0])


def _buffered_writes(records: list[int], buffer: int) -> tuple[tuple[int, ...], int]:
    """(writes issued, bytes left in the buffer) after OpenSSL's buffering BIO took `records`:
    a record that fits is buffered; one that does not fills the buffer, which is written, and
    the rest is written directly when it is at least a buffer's worth, else buffered."""
    writes: list[int] = []
    buffered = 0
    for n in records:
        if buffered + n <= buffer:
            buffered += n
            continue
        if buffered:
            n -= buffer - buffered
            writes.append(buffer)
            buffered = 0
        if n >= buffer:
            writes.append(n)
            n = 0
        buffered = n
    return tuple(writes), buffered


__all__ = ["HEADER", "TAG", "PROTECTED_OVERHEAD", "MAX_FRAGMENT", "CCS_RECORD", "WRITE_BUFFER",
           "record_sizes", "socket_writes", "writes_issued"]
